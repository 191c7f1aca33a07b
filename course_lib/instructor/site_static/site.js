// Search over the index MyST writes (myst.search.json): every word typed must appear in a section's
// title or text. Links are made relative to the site's root, so the site works under any address.
(function () {
  const root = document.body.dataset.root || "";
  const box = document.getElementById("search");
  const list = document.getElementById("search-results");
  let records = null;

  function pageHref(url) {
    const [path, anchor] = url.split("#");
    const slug = path.replace(/^\//, "");
    return root + (slug ? slug + "/index.html" : "index.html") + (anchor ? "#" + anchor : "");
  }

  function show(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    list.replaceChildren();
    if (!words.length || !records) { list.hidden = true; return; }
    const hits = records.filter(function (r) {
      const text = (Object.values(r.hierarchy || {}).join(" ") + " " + (r.content || "")).toLowerCase();
      return words.every(function (w) { return text.includes(w); });
    }).slice(0, 20);
    for (const r of hits) {
      const h = r.hierarchy || {};
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = pageHref(r.url);
      a.textContent = h.lvl3 || h.lvl2 || h.lvl1 || r.url;
      const where = document.createElement("small");
      where.textContent = h.lvl1 || "";
      li.append(a, where);
      list.append(li);
    }
    if (!hits.length) { const li = document.createElement("li"); li.textContent = "Nothing found."; list.append(li); }
    list.hidden = false;
  }

  box.addEventListener("input", function () {
    if (records) { show(box.value); return; }
    fetch(root + "myst.search.json").then(function (r) { return r.json(); }).then(function (index) {
      records = index.records || [];
      show(box.value);
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { list.hidden = true; }
  });
})();
