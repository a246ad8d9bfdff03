// Copy buttons: <button data-copy="ID"> copies the value of the input with that id.
// The pages work without this file: the links are in read-only fields anyone can select.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  event.preventDefault();
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) return;
  var done = function () {
    button.textContent = button.getAttribute("data-copied") || button.textContent;
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () {
      field.select();
    });
  } else {
    field.select();
    document.execCommand("copy");
    done();
  }
});
