// Sign-in: paste a bearer token (one from your identity provider, or `opstatus ui`). It is
// checked against GET /principal before the tab keeps it (sessionStorage, this tab only).

import { principal } from "../api.js";
import { h } from "../format.js";

export function signInPage(message, signedIn) {
  const error = h("p", { id: "signin-error", class: "error", role: "alert" });
  if (message) error.textContent = message;
  // A password field: the token is a credential, not shown on screen.
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "token-help signin-error",
  });
  const button = h("button", { type: "submit", text: "Sign in" });
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", text: "Sign in" }),
    h("label", { for: "token", text: "Bearer token" }),
    input,
    h(
      "p",
      { id: "token-help", class: "muted" },
      "Paste a token of your identity provider, or one that ",
      h("code", { text: "opstatus ui" }),
      " printed. This tab keeps it until you sign out or close it; it is sent only to this server.",
    ),
    button,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) return;
    button.disabled = true;
    error.textContent = "";
    try {
      const who = await principal(token);
      await signedIn(token, who);
    } catch (failure) {
      error.textContent = failure.message;
      button.disabled = false;
      input.focus();
    }
  });
  setTimeout(() => input.focus(), 0);
  return form;
}
