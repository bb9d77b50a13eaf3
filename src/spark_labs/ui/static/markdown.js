// A small Markdown renderer that builds DOM nodes and never parses HTML.
//
// Model output is untrusted: a model can be prompted (or fine-tuned) into printing <script> or
// <img onerror=...>. Nothing here uses innerHTML: text becomes text nodes, so markup in the answer
// shows as the characters it is. Supported: fenced code blocks, inline code, **bold**, *italic*,
// headings, bullet and numbered lists, paragraphs, and [links](https://...) whose target is http(s);
// any other link target (javascript:, data:, relative) is shown as plain text.

const SAFE_URL = /^https?:\/\/[^\s]+$/i;
// One alternation per inline construct; the first that matches at a position wins.
const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*|(?<!\w)_[^_\n]+_(?!\w))|(\[[^\]\n]*\]\([^)\s]*\))/;

export function renderMarkdown(text, doc = document) {
  const fragment = doc.createDocumentFragment();
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trimStart().startsWith("```")) {
      const code = [];
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith("```")) code.push(lines[i++]);
      i += 1; // the closing fence (absent while the answer is still streaming)
      const pre = doc.createElement("pre");
      const codeEl = doc.createElement("code");
      codeEl.textContent = code.join("\n");
      pre.append(codeEl);
      fragment.append(pre);
    } else if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = doc.createElement(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])
             && /^\s*\d/.test(lines[i]) === ordered) {
        const item = doc.createElement("li");
        appendInline(item, lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""), doc);
        list.append(item);
        i += 1;
      }
      fragment.append(list);
    } else if (/^#{1,6}\s/.test(line)) {
      const heading = doc.createElement("h4");
      appendInline(heading, line.replace(/^#{1,6}\s+/, ""), doc);
      fragment.append(heading);
      i += 1;
    } else if (!line.trim()) {
      i += 1;
    } else {
      const paragraph = doc.createElement("p");
      const body = [];
      while (i < lines.length && lines[i].trim() && !isBlockStart(lines[i])) body.push(lines[i++]);
      appendInline(paragraph, body.join("\n"), doc);
      fragment.append(paragraph);
    }
  }
  return fragment;
}

function isBlockStart(line) {
  return line.trimStart().startsWith("```") || /^\s*([-*+]|\d+[.)])\s+/.test(line) || /^#{1,6}\s/.test(line);
}

function appendInline(parent, text, doc) {
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      parent.append(doc.createTextNode(rest));
      return;
    }
    if (match.index > 0) parent.append(doc.createTextNode(rest.slice(0, match.index)));
    parent.append(inlineNode(match, doc));
    rest = rest.slice(match.index + match[0].length);
  }
}

function inlineNode(match, doc) {
  const [token, code, bold, italic, link] = match;
  if (code) return element(doc, "code", code.slice(1, -1));
  if (bold) return element(doc, "strong", bold.slice(2, -2));
  if (italic) return element(doc, "em", italic.slice(1, -1));
  const [, label, url] = /^\[([^\]]*)\]\(([^)]*)\)$/.exec(link);
  if (!SAFE_URL.test(url)) return doc.createTextNode(token); // javascript:, data:, relative: shown, not followed
  const anchor = element(doc, "a", label || url);
  anchor.href = url;
  anchor.rel = "noopener noreferrer nofollow";
  anchor.target = "_blank";
  return anchor;
}

function element(doc, tag, text) {
  const node = doc.createElement(tag);
  node.textContent = text;
  return node;
}
