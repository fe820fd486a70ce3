// The intake queue: the header box ticks or clears every candidate on the page (also after htmx
// swaps the table, hence the delegated listener).
document.addEventListener("change", (event) => {
  const box = event.target.closest("[data-tick-all]");
  if (!box) return;
  document.querySelectorAll("#bulk-form input[name=ids]").forEach((b) => { b.checked = box.checked; });
});
