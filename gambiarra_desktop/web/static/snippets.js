// The Connect snippets, as the desktop app shows them (gui/room_controller.py): a room
// with a password takes it as the API key, and the snippets name it, never print it.
import { copyButton } from "./copy.js";

export function snippets(baseUrl, hasPassword) {
  const auth = hasPassword ? '  -H "Authorization: Bearer $ROOM_PASSWORD" \\\n' : "";
  const key = hasPassword ? 'os.environ["ROOM_PASSWORD"]' : '"unused"';
  const keyNote = hasPassword ? "the room's password" : "anything (the room does not check it)";
  return [
    ["OpenAI base URL", baseUrl],
    ["curl", `curl ${baseUrl}/chat/completions \\\n  -H "Content-Type: application/json" \\\n${auth}`
      + `  -d '{"model": "*", "messages": [{"role": "user", "content": "Hello!"}]}'`],
    ["Python (openai SDK)", `${hasPassword ? "import os\n" : ""}from openai import OpenAI\n\n`
      + `client = OpenAI(base_url="${baseUrl}", api_key=${key})\n`
      + "reply = client.chat.completions.create(\n"
      + '    model="*", messages=[{"role": "user", "content": "Hello!"}])\n'
      + "print(reply.choices[0].message.content)"],
    ["Open WebUI / Continue", "Open WebUI: Settings → Connections → OpenAI API\n"
      + `  URL: ${baseUrl}\n  Key: ${keyNote}\n\n`
      + "Continue (config.yaml):\n  models:\n    - name: Gambiarra room\n"
      + `      provider: openai\n      model: "*"\n      apiBase: ${baseUrl}`
      + (hasPassword ? "\n      apiKey: <the room's password>" : "")],
  ];
}

// The base URL in sight; each client's snippet folded under its name (a phone's screen
// is too small for all of them at once).
export function renderSnippets(container, baseUrl, hasPassword) {
  container.replaceChildren(...snippets(baseUrl, hasPassword).map(([title, text], index) => {
    const box = document.createElement(index === 0 ? "div" : "details");
    box.className = "snippet";
    const head = document.createElement(index === 0 ? "div" : "summary");
    head.className = "row";
    const heading = document.createElement("h3");
    heading.textContent = title;
    head.append(heading, copyButton(`the ${title}`, () => text));
    const code = document.createElement("pre");
    code.textContent = text;
    code.setAttribute("aria-label", `${title} snippet`);
    box.append(head, code);
    return box;
  }));
}
