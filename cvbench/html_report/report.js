// The report's only script, inlined into the page. Sorts a table by a clicked header (numbers by their value,
// blanks last), sorts each leaderboard once on load by the column its data-sort-by names, and marks each figure
// data-decoded="true" once it has drawn it on load (what tests/test_report_browser.py reads back).
(function () {
  "use strict";

  function key(row, index) {
    var cell = row.cells[index];
    if (!cell) { return null; }
    if (cell.hasAttribute("data-value")) {
      var number = parseFloat(cell.getAttribute("data-value"));
      return isNaN(number) ? null : number;
    }
    var text = cell.textContent.trim();
    return text === "" ? null : text;
  }

  function compare(a, b, descending) {
    if (a === null || b === null) { return a === b ? 0 : (a === null ? 1 : -1); }  // blanks last either way
    var order = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
    return descending ? -order : order;
  }

  function sortBy(table, index, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, position) { row.dataset.position = position; });
    rows.sort(function (a, b) {
      return compare(key(a, index), key(b, index), descending) || a.dataset.position - b.dataset.position;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      if (column === index) {
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      } else {
        header.removeAttribute("aria-sort");
      }
    });
    table.dataset.sortedBy = table.tHead.rows[0].cells[index].textContent;
    table.dataset.order = descending ? "descending" : "ascending";
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    headers.forEach(function (header, index) {
      header.addEventListener("click", function () {
        var numeric = header.classList.contains("number");
        var current = header.getAttribute("aria-sort");
        var descending = current ? current === "ascending" : numeric;  // numbers best first, text A to Z
        sortBy(table, index, descending);
      });
    });
    var first = table.dataset.sortBy;
    var chosen = headers.findIndex(function (header) { return header.textContent === first; });
    if (chosen >= 0) { sortBy(table, chosen, true); }
  });

  // Drawing a figure into a canvas decodes it on the page's own thread, so the mark is set before the load
  // event ends (img.decode() settles off-thread, later than a headless browser may dump the page). Every
  // figure has an opaque background, and a decode that stops part-way leaves the rows after it transparent,
  // so a figure counts as decoded when its last pixel drew opaque.
  window.addEventListener("load", function () {
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    document.querySelectorAll("img").forEach(function (image) {
      var opaque = false;
      try {
        canvas.width = Math.max(image.naturalWidth, 1);
        canvas.height = Math.max(image.naturalHeight, 1);
        context.drawImage(image, 0, 0);
        opaque = image.naturalWidth > 0 && context.getImageData(canvas.width - 1, canvas.height - 1, 1, 1).data[3] > 0;
      } catch (error) {
        opaque = false;
      }
      image.dataset.decoded = opaque ? "true" : "false";
      if (!opaque) { console.error("a figure did not decode: " + image.alt); }
    });
  });
})();
