"""The main window: the hub list on the left; a hub's rooms or an open room on the right.

It only composes views and controllers; all network work runs in the controllers on the
shared qasync loop, so the window never waits on the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.agent.relays import PermissionRequest
from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.firewall import firewall_advice
from gambiarra_desktop.gui import agent_text
from gambiarra_desktop.gui.about_dialog import AboutDialog, user_log_path
from gambiarra_desktop.gui.agent_controller import AgentController
from gambiarra_desktop.gui.agent_view import AgentPage
from gambiarra_desktop.gui.bridge import HUB_EVENT_TYPES, CoreBridge
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.discovery_controller import DiscoveryController
from gambiarra_desktop.gui.focus_guard import FocusGuard
from gambiarra_desktop.gui.gateway_controller import GatewayController, hosted_target
from gambiarra_desktop.gui.gateway_view import GatewayPage
from gambiarra_desktop.gui.host_controller import HostController
from gambiarra_desktop.gui.hub_controller import HubController
from gambiarra_desktop.gui.hub_view import HubPage
from gambiarra_desktop.gui.models import HubEntry, RoomSession
from gambiarra_desktop.gui.playground_controller import PlaygroundController
from gambiarra_desktop.gui.resources import icon
from gambiarra_desktop.gui.room_controller import RoomController
from gambiarra_desktop.gui.room_view import RoomPage
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.share_banner import ShareBanner
from gambiarra_desktop.gui.share_controller import ShareController, same_room
from gambiarra_desktop.gui.sidebar_view import SidebarView
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.gui.terminal_controller import TerminalController
from gambiarra_desktop.gui.terminal_view import TerminalPage
from gambiarra_desktop.gui.theme import ThemeMode, apply_theme
from gambiarra_desktop.gui.tray import APPROVAL_TITLE, Tray
from gambiarra_desktop.gui.usage_controller import UsageController
from gambiarra_desktop.gui.usage_view import UsagePage
from gambiarra_desktop.gui.window_fit import SidebarFit, StackFit, scrolled
from gambiarra_desktop.hub.keys import BUS

WELCOME_TEXT = (
    "<h2>Pool the models on your network</h2>"
    "<p>Pick a hub on the left, or click <b>Host a hub</b> to run one on this computer.</p>"
    "<p>In a room, flip <b>Share my model</b> to lend your Ollama, LM Studio or llama.cpp"
    " server, and use everyone's models through one OpenAI-compatible address.</p>"
)


def _nothing() -> None:
    """Unsubscribing when no hub is hosted."""


class MainWindow(QMainWindow):
    def __init__(self, config: GuiConfig, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.config = config
        self.settings = settings or AppSettings()
        self.quit_requested = asyncio.Event()
        self.closing = False
        self.setWindowTitle("Gambiarra")
        self.setWindowIcon(icon("gambiarra"))
        self.resize(1180, 760)
        if self.settings.geometry is not None:
            self.restoreGeometry(self.settings.geometry)

        self.bridge = CoreBridge()
        self.sidebar = SidebarView()
        self.stack = QStackedWidget()
        self.welcome = QLabel(WELCOME_TEXT)
        self.welcome.setObjectName("page")
        self.welcome.setWordWrap(True)
        self.welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.welcome.setContentsMargins(60, 40, 60, 40)
        self.hub_page = HubPage()
        self.room_page = RoomPage()
        self.gateway_page = GatewayPage()
        self.usage_page = UsagePage()
        self.terminal_page = TerminalPage()
        self.agent_page = AgentPage()
        for page in (self.welcome, self.hub_page, self.room_page, self.gateway_page,
                     self.usage_page, self.terminal_page, self.agent_page):
            self.stack.addWidget(page)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        right = QVBoxLayout()
        self.share_banner = ShareBanner()  # Above every page: a running share stays seen.
        right.addWidget(self.share_banner)
        # Down to 800x600: the stack asks for its current page only, and scrolls beyond.
        self._stack_fit = StackFit(self.stack)
        right.addWidget(scrolled(self.stack))
        layout.addLayout(right, 1)
        self.setCentralWidget(central)
        self._sidebar_fit = SidebarFit(self, self.sidebar)

        self.tasks = TaskTracker()
        self.host = HostController(self.sidebar, config, self.settings, self.tasks)
        app = QApplication.instance()
        self.focus_guard = (FocusGuard(app, [self.sidebar.host_button], self.stack)
                            if isinstance(app, QApplication) else None)
        self.discovery = DiscoveryController(self.sidebar, self.bridge, config, self.settings,
                                             self.tasks)
        self.hubs = HubController(self.hub_page, self.settings, self.tasks,
                                  owner_token=self._owner_token)
        self.room = RoomController(self.room_page, self.bridge, self.tasks, config)
        self.share = ShareController(self.room_page.share, self.bridge, config, self.settings,
                                     self.tasks, self.share_banner)
        self.playground = PlaygroundController(self.room_page.playground, self.tasks)
        self.bridge.room_event.connect(self.playground.on_room_event)  # Its queue place.
        self.gateway = GatewayController(self.gateway_page, self.tasks)
        self.sidebar.gateway_clicked.connect(self.show_gateway)
        self.usage = UsageController(self.usage_page, self.gateway, self.bridge, self.tasks)
        self.sidebar.usage_clicked.connect(self.show_usage)
        self.usage_page.gateway_requested.connect(self.show_gateway)
        self.terminal = TerminalController(self.terminal_page, self.bridge, self.settings,
                                           self.tasks)
        self.sidebar.terminal_clicked.connect(self.show_terminal)
        self.agent = AgentController(self.agent_page, self.bridge, self.settings, self.tasks,
                                     config.data_dir)
        self.sidebar.agent_clicked.connect(self.show_agent)
        self.bridge.agent_relay_asked.connect(self._on_agent_asked)
        self._unsubscribe_hub: Callable[[], None] = _nothing
        self.share.served_people.connect(self.room.show_served)

        self.host.hosting_changed.connect(self.on_hosting_changed)
        self.discovery.hub_selected.connect(self.show_hub)
        # A new LAN address: the open room's guest link and QR code name it.
        self.discovery.network_changed.connect(self.room.refresh_guest_link)
        self.hubs.room_opened.connect(self.open_room)
        self.hubs.rooms_counted.connect(self._on_rooms_counted)
        self.room_page.leave_clicked.connect(self.back_to_hub)
        self.share.open_shared_room.connect(self.open_shared_room)
        self._build_menu()
        self.tray: Tray | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.use_tray(Tray(self))
        self.bridge.cost_alert.connect(self._on_cost_alert)
        self._apply_theme(self.settings.theme)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut("Ctrl+Q")
        quit_action.triggered.connect(self.quit_requested.set)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        for mode, label in (("system", "Follow the system"), ("light", "Light"),
                            ("dark", "Dark")):
            action = QAction(label, self, checkable=True)
            action.setChecked(self.settings.theme == mode)
            action.triggered.connect(lambda _=False, m=mode: self._apply_theme(m))
            group.addAction(action)
            view_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        firewall_action = QAction("&Firewall and network…", self)
        firewall_action.triggered.connect(self.explain_firewall)
        help_menu.addAction(firewall_action)
        # Help's own part: where to look when something goes wrong. Tests swap the dir
        # and the opener (the tray's About / Open log folder call the same methods).
        self.log_dir = user_log_path()
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self.about_dialog: AboutDialog | None = None
        open_log_action = QAction("Open &log folder", self)
        open_log_action.triggered.connect(self.open_log_folder)
        help_menu.addAction(open_log_action)
        about_action = QAction("&About Gambiarra", self)
        about_action.triggered.connect(self.show_about)
        help_menu.addAction(about_action)

    def show_about(self) -> None:
        """The version, the data and log dirs, the project's link. ``show()``, never
        ``exec()``: a nested loop would stall the hub running on this event loop."""
        if self.about_dialog is None:
            self.about_dialog = AboutDialog(self.config.data_dir, self.log_dir, self)
        self.about_dialog.show()
        self.about_dialog.raise_()

    def open_log_folder(self) -> None:
        """The log folder in the file manager, made first if the app has not logged yet.
        A folder that cannot be made (a read-only home) or a desktop with no file manager
        is said in a box, never a traceback."""
        problem = ""
        try:
            self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            problem = f"The log folder {self.log_dir} cannot be created ({exc.strerror or exc})."
        else:
            if not self.open_url(QUrl.fromLocalFile(str(self.log_dir))):
                problem = (f"No file manager opened the log folder. It is {self.log_dir}:"
                           " open it yourself.")
        if problem:
            box = QMessageBox(QMessageBox.Icon.Warning, "Open log folder", problem,
                              QMessageBox.StandardButton.Ok, self)
            box.setObjectName("logFolderProblem")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    @tracked_slot()
    async def explain_firewall(self) -> None:
        """Why hosting needs the firewall's permission, and how to give it here.

        Shown with ``open()``, not ``exec()``: a nested modal loop would stall the hub
        and every transfer running on this same event loop.
        """
        port = self.host.hosted.port if self.host.hosted else self.settings.host_port
        advice = await asyncio.to_thread(firewall_advice, port)
        box = QMessageBox(QMessageBox.Icon.Information, "Firewall and network", advice.why,
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText("\n".join((advice.what_happens, *advice.commands)))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setObjectName("firewallHelp")
        box.open()

    def _apply_theme(self, mode: ThemeMode) -> None:
        self.settings.theme = mode
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, mode)

    async def start(self) -> None:
        await self.discovery.start()
        self.agent.restore()

    def _owner_token(self, entry: HubEntry) -> str | None:
        """The hub this app hosts is this user's: they may delete any room on it."""
        hosted = self.host.hosted
        if hosted is None or entry.source != "local":
            return None
        return hosted.server.owner_token

    def on_hosting_changed(self, hosted: HostedHub | None) -> None:
        self.discovery.on_hosting_changed(hosted)
        self.room.on_hosting_changed(hosted)  # Its bind address: a guest link or none.
        self._unsubscribe_hub()  # The hosted hub's bus tells the window of its cost alert.
        self._unsubscribe_hub = (hosted.server.app[BUS].subscribe(self.bridge.on_hub_event,
                                                                  HUB_EVENT_TYPES)
                                 if hosted else _nothing)
        self.terminal.on_hosting_changed(hosted)
        if self.tray is not None:
            self.tray.set_hosting(hosted.port if hosted else None)
        self.agent.on_hosting_changed(hosted)
        self.tasks.spawn(self._retarget(hosted))
        if hosted is not None:
            self.discovery.select("local")

    async def _retarget(self, hosted: HostedHub | None) -> None:
        await self.usage.set_local_alerts(hosted is not None)
        await self.gateway.set_target(hosted_target(hosted) if hosted else None)
        if self.stack.currentWidget() is self.usage_page:
            await self.usage.refresh_now()

    def _on_cost_alert(self, data: object) -> None:
        if self.tray is not None:
            self.tray.notify_cost_alert(data)

    def _on_agent_asked(self, request: object) -> None:
        """A pending approval is said in the tray too: the window may be hidden."""
        if self.tray is not None and isinstance(request, PermissionRequest):
            self.tray.notify_approval(request.tool,
                                      agent_text.notify_text(request.tool, request.params))

    def _on_rooms_counted(self, key: str, count: int) -> None:
        entry = self.discovery.entries.get(key)
        if entry is not None and entry.room_count != count:
            entry.room_count = count
            self.discovery.upsert(entry)

    def show_gateway(self) -> None:
        """The page, reloaded: rooms and participants may have changed since it last looked."""
        self.stack.setCurrentWidget(self.gateway_page)
        self.gateway.refresh()

    def show_usage(self) -> None:
        """The page, reloaded for the period picked; it uses the Gateway page's login."""
        self.stack.setCurrentWidget(self.usage_page)
        self.usage.refresh()

    def show_terminal(self) -> None:
        self.stack.setCurrentWidget(self.terminal_page)
        self.terminal.refresh()

    def show_agent(self) -> None:
        self.stack.setCurrentWidget(self.agent_page)
        self.agent.refresh_rules()

    @tracked_slot(object)
    async def show_hub(self, entry: HubEntry) -> None:
        if self.closing:
            return
        self.stack.setCurrentWidget(self.hub_page)
        await self.hubs.show(entry)

    @tracked_slot(object)
    async def open_room(self, session: RoomSession) -> None:
        """Open ``session``'s room. A share runs on whatever room is opened: only the user
        stops it (the banner and the tab say where it goes)."""
        if self.closing:
            return
        await self.playground.leave()
        # Every tab knows the new room before the page shows, so an early click is served.
        self.playground.session = self.share.session = session
        self.stack.setCurrentWidget(self.room_page)
        self.room_page.tabs.setCurrentIndex(0)
        if not await self.room.open(session):
            return  # Left (or gone) before the hub let this session in: no tab opens.
        await self.playground.open(session)
        await self.share.open(session)

    @tracked_slot()
    async def back_to_hub(self) -> None:
        self.share.leave_room()  # The share, if any, runs on; the banner shows it.
        await self.playground.leave()
        await self.room.close()
        self.stack.setCurrentWidget(self.hub_page)
        await self.hubs.refresh()

    def open_shared_room(self, session: RoomSession) -> None:
        """The banner: back to the room the share goes to, on its Share tab."""
        if self.stack.currentWidget() is self.room_page and same_room(self.room.session,
                                                                       session):
            self.room_page.tabs.setCurrentWidget(self.room_page.share)
            return
        self.open_room(session)

    def use_tray(self, tray: Tray) -> None:
        """Wire a tray icon: its share item is the share controller's switch, and its
        *Stop hosting* takes the sidebar's stop path (it asks while people are online),
        never the sidebar's toggle: a late click must not start a hub."""
        self.tray = tray
        tray.show_action.triggered.connect(self.bring_back)
        tray.quit_action.triggered.connect(self.quit_requested.set)
        tray.stop_hosting_action.triggered.connect(self.host.request_stop)
        tray.about_action.triggered.connect(self.show_about)
        tray.log_folder_action.triggered.connect(self.open_log_folder)
        tray.activated.connect(self._on_tray_activated)
        tray.messageClicked.connect(self._on_tray_message_clicked)
        self.share.attach_tray(tray)
        tray.set_hosting(self.host.hosted.port if self.host.hosted else None)
        tray.show()

    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.bring_back()

    def _on_tray_message_clicked(self) -> None:
        """A click on "the agent asks" opens the page with its card."""
        self.bring_back()
        if self.tray is not None and self.tray.last_message is not None \
                and self.tray.last_message[0] == APPROVAL_TITLE:
            self.show_agent()

    def bring_back(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override.
        self.settings.geometry = self.saveGeometry()
        if self.tray is not None and not self.quit_requested.is_set():
            event.ignore()
            self.hide()
            self.tray.showMessage("Gambiarra", "Still running here; sharing continues.",
                                  QSystemTrayIcon.MessageIcon.Information, 3000)
            return
        event.accept()
        self.quit_requested.set()

    async def shutdown(self) -> None:
        """Leave rooms, say goodbye on mDNS, stop the hub: in that order, all awaited.
        Safe to call twice."""
        if self.closing:
            return
        self.closing = True
        await self.tasks.cancel_all()
        self.settings.geometry = self.saveGeometry()
        self.settings.sync()
        await self.share.stop_sharing()
        await self.room.close()
        await self.discovery.stop()
        await self.usage.close()
        self._unsubscribe_hub()
        await self.gateway.close()
        self.terminal.close()  # Open questions answered no before the hub goes.
        await self.agent.close()  # Its chats end and its site closes before the hub goes.
        await self.host.stop()
        await self.tasks.cancel_all()
        if self.tray is not None:
            self.tray.hide()
