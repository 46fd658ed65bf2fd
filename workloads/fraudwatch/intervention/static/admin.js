// The confirmation dialog for account actions: asks for a reason before the form posts.
document.addEventListener("DOMContentLoaded", () => {
  const dialog = document.getElementById("confirm");
  if (!dialog) return;
  const form = document.getElementById("confirm-form");
  const title = document.getElementById("confirm-title");
  for (const button of document.querySelectorAll("button.action")) {
    button.addEventListener("click", () => {
      form.action = button.dataset.url;
      title.textContent = button.dataset.label + "?";
      dialog.showModal();
      document.getElementById("reason").focus();
    });
  }
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());
});
