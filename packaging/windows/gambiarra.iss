; Inno Setup script for Gambiarra Desktop (compiled by packaging\build-windows.ps1).
; ISCC gets /DAppVersion, /DBundleDir (the PyInstaller folder), /DOutputDir, /DIconFile.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#define AppName "Gambiarra Desktop"
#define AppExe "gambiarra-desktop.exe"
#define FirewallRule "Gambiarra Desktop"

[Setup]
; Never change AppId: it is how Windows recognises upgrades and the uninstaller.
AppId={{6F0B6C57-3D4E-4E8B-9B5A-0C7E2D6A9F31}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Gambiarra Desktop developers
AppPublisherURL=https://github.com/gambiarra-desktop/gambiarra-desktop
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Administrator by default, so the firewall rule can be added; a per-user install is
; offered too, and then Windows asks about the firewall on the first Host instead.
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=gambiarra-desktop-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "firewall"; Description: "Allow Gambiarra Desktop through Windows Firewall on private networks. People in your rooms reach a hub you host on TCP port 3000, and apps find it with mDNS on UDP port 5353."; GroupDescription: "Network:"; Check: IsAdminInstallMode
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{sys}\netsh.exe"; Parameters: "advfirewall firewall add rule name=""{#FirewallRule}"" dir=in action=allow program=""{app}\{#AppExe}"" enable=yes profile=private,domain"; Flags: runhidden; Tasks: firewall; StatusMsg: "Allowing Gambiarra Desktop through Windows Firewall..."
Filename: "{sys}\netsh.exe"; Parameters: "advfirewall firewall add rule name=""{#FirewallRule}"" dir=in action=allow program=""{app}\gambiarra.exe"" enable=yes profile=private,domain"; Flags: runhidden; Tasks: firewall
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallRun]
Filename: "{sys}\netsh.exe"; Parameters: "advfirewall firewall delete rule name=""{#FirewallRule}"""; Flags: runhidden; RunOnceId: "RemoveFirewallRule"
