// Building DOM without innerHTML: every text from the API goes in as text, never markup.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "style") Object.assign(el.style, v);  // CSSOM: allowed by the page's CSP, a style attribute is not
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function toast(text, kind = "ok", detail = null) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}` }, h("div", { text }), detail ? h("div", { class: "toast-detail", text: detail }) : null);
  box.append(el);
  setTimeout(() => el.remove(), 9000);
}

/** A modal <dialog>; resolves when closed. Escape closes it (native). */
export function modal(title, body, { wide = false, onClose } = {}) {
  const closeBtn = h("button", { class: "btn ghost", type: "button", "aria-label": "close" }, "×");
  const dlg = h("dialog", { class: wide ? "modal wide" : "modal", "aria-labelledby": "dlg-title" },
    h("header", { class: "modal-head" }, h("h2", { id: "dlg-title", text: title }), closeBtn),
    h("div", { class: "modal-body" }, body));
  closeBtn.addEventListener("click", () => dlg.close());
  const opener = document.activeElement;
  dlg.addEventListener("close", () => {
    dlg.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected) opener.focus();
    document.dispatchEvent(new Event("ioc-dialog-closed"));
  });
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}
