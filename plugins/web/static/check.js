// Checks a pack form as it is typed: a moment after the last key, the form goes to the console's
// check route, which loads the pack as it would be in a copy; the loader's words (file and line)
// show above the form, and nothing is saved until the form is sent. Without JavaScript the same
// check happens when the form is sent.
for (const form of document.querySelectorAll("form[data-check]")) {
  const said = form.querySelector(".live-check");
  let pending;
  form.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const data = new FormData(form);
      data.set("what", form.dataset.what);
      const response = await fetch(form.dataset.check, { method: "POST", body: data, credentials: "same-origin" });
      if (!response.ok) return;
      const { problem } = await response.json();
      said.textContent = problem || "";
      said.hidden = !problem;
    }, 400);
  });
}
