// Progressive enhancement only: every page works without this file.
// Copy buttons: reveal and wire `button[data-copy]` to copy the text of the
// element whose id it names.
for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
}
// Put keyboard focus on the first invalid field after a failed post.
const invalid = document.querySelector("[aria-invalid=true]");
if (invalid) invalid.focus();
// Tunnel forms: the allowed users and groups matter only for restricted access.
for (const form of document.querySelectorAll("form")) {
  const only = form.querySelector(".restricted-only");
  if (!only) continue;
  const sync = () => {
    only.hidden = form.querySelector("input[name=access]:checked")?.value !== "restricted";
  };
  form.addEventListener("change", sync);
  sync();
}
