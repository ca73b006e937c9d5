// Added by unstuck (UNSTUCK_LIVERELOAD=1) to HTML pages; see livereload.py. Everything is inside this
// function: nothing is added to the page's globals, and the overlay lives in its own shadow root, built
// with DOM calls (no innerHTML, no <style> element), so the page's CSS and ours never meet. Sizes are in
// px: rem would follow the page's root font size.
(function () {
  var ENDPOINT = "/__unstuck__/livereload", POLL_MS = 400, MARKER = "x-unstuck-error";
  var onErrorPage = __ON_ERROR_PAGE__;  // this page is unstuck's 503 page: it just reloads
  var token = null, host = null;
  var realFetch = window.fetch;  // the script's own requests go around the page's wrapped fetch below

  function el(tag, css, text) {
    var node = document.createElement(tag);
    if (css) node.style.cssText = css;
    if (text != null) node.textContent = text;
    return node;
  }

  function hide() {
    if (host) { host.parentNode && host.parentNode.removeChild(host); host = null; }
  }

  function code(frame) {
    var start = frame.context_start || frame.line, last = start + frame.context.length - 1;
    var width = String(last).length;
    var pre = el("pre", "margin:12px 0;padding:12px 0;background:#0b0b0b;border-radius:4px;overflow-x:auto;" +
                 "font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;color:#ccc;white-space:pre");
    frame.context.forEach(function (source, i) {
      var number = start + i, own = number === frame.line;
      var gutter = (Array(width + 1).join(" ") + number).slice(-width) + " | ";
      var row = el("div", own ? "padding:0 16px;background:rgba(255,85,85,.28);color:#fff;font-weight:bold"
                              : "padding:0 16px", gutter + source);
      row.setAttribute("data-line", number);
      if (own) row.setAttribute("data-failing", "");
      pre.appendChild(row);
      if (own && frame.column && frame.column <= source.length + 1) {
        var pad = source.slice(0, frame.column - 1).replace(/[^\t]/g, " ");
        var end = Math.min(Math.max(frame.end_column || 0, frame.column + 1), source.length + 1);
        pre.appendChild(el("div", "padding:0 16px;color:#ff6b6b;font-weight:bold",
                           Array(width + 1).join(" ") + " | " + pad + Array(Math.max(end - frame.column, 1) + 1).join("^")));
      }
    });
    return pre;
  }

  function show(error) {
    hide();
    host = el("div", "position:fixed;top:0;left:0;right:0;bottom:0;z-index:2147483647");
    host.setAttribute("data-unstuck-overlay", "");
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var backdrop = el("div", "position:fixed;top:0;left:0;right:0;bottom:0;overflow:auto;box-sizing:border-box;" +
                      "padding:8vh 16px;background:rgba(0,0,0,.66);font:14px/1.5 system-ui,sans-serif;color:#ddd");
    var box = el("div", "position:relative;box-sizing:border-box;max-width:1024px;margin:0 auto;padding:20px 24px;" +
                 "background:#181818;border-top:6px solid #ff5555;border-radius:6px;box-shadow:0 10px 40px rgba(0,0,0,.5)");
    var close = el("button", "position:absolute;top:8px;right:12px;background:none;border:0;color:#aaa;" +
                   "font:20px/1 system-ui,sans-serif;cursor:pointer", "\u00d7");
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", hide);
    box.appendChild(close);
    box.appendChild(el("div", "color:#ff7b7b;font-weight:bold;font-size:16px", error.title));
    if (error.request) box.appendChild(el("div", "margin-top:4px;color:#bbb;font:bold 13px/1.5 ui-monospace,Menlo,monospace",
                                          error.request));
    box.appendChild(el("pre", "margin:8px 0;white-space:pre-wrap;color:#ffd5d5;font:bold 14px/1.5 ui-monospace,Menlo,monospace",
                       error.exception + (error.message ? ": " + error.message : "")));
    if (error.file) box.appendChild(el("div", "color:#9ab", error.file + (error.line ? ":" + error.line : "")));
    if (error.hint) box.appendChild(el("div", "margin:12px 0;padding:8px 12px;border-radius:4px;background:#3a3000;color:#ffe08a",
                                       "Hint: " + error.hint));
    if (error.frame && error.frame.context && error.frame.context.length) box.appendChild(code(error.frame));
    box.appendChild(el("div", "margin-top:16px;color:#888;font-size:12px", error.phase === "request"
                       ? "Served by unstuck: a request of this page failed. Save a fix and this page reloads; " +
                         "Esc or a click outside dismisses this."
                       : "Served by unstuck: save a fix and this page reloads. Esc or a click outside dismisses this; " +
                         "any URL of the app shows the full error while it is broken."));
    backdrop.appendChild(box);
    backdrop.addEventListener("click", function (event) { if (event.target === backdrop) hide(); });
    root.appendChild(backdrop);
    (document.body || document.documentElement).appendChild(host);
  }

  document.addEventListener("keydown", function (event) {
    if (host && (event.key === "Escape" || event.key === "Esc")) hide();
  });

  // A request that failed with unstuck's request-time error page (request_errors.py) carries MARKER: the
  // overlay shows that error, fetched by its id (the failed request is not made again).
  function failedRequest(status, id) {
    if (status !== 500 || !id) return;
    realFetch.call(window, ENDPOINT + "?error=" + encodeURIComponent(id), { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (data) { if (data.request_error) show(data.request_error); }, function () {});
  }

  if (realFetch) {
    window.fetch = function () {
      return realFetch.apply(window, arguments).then(function (response) {
        failedRequest(response.status, response.headers.get(MARKER));
        return response;
      });
    };
  }
  var xhrSend = window.XMLHttpRequest && XMLHttpRequest.prototype.send;
  if (xhrSend) {
    XMLHttpRequest.prototype.send = function () {
      this.addEventListener("loadend", function () { failedRequest(this.status, this.getResponseHeader(MARKER)); });
      return xhrSend.apply(this, arguments);
    };
  }

  // A new generation of the app serves: reload into it, unless this very page now fails, which then shows
  // in the overlay over the page as it was (the next save tries again).
  function reloadUnlessFailing() {
    if (onErrorPage) { location.reload(); return; }
    realFetch.call(window, location.href, { cache: "no-store", headers: { accept: "text/html" } }).then(function (response) {
      var id = response.status === 500 && response.headers.get(MARKER);
      if (id) failedRequest(500, id); else location.reload();
    }, function () { location.reload(); });
  }

  function poll() {
    realFetch.call(window, ENDPOINT, { cache: "no-store" }).then(function (response) { return response.json(); }).then(function (data) {
      if (data.token !== token) {
        // A new generation serves. The app: reload into it. An error, over a page of the app: show it
        // over the page, which stays (as it was before the broken save), until a fix reloads it.
        if (data.error && !onErrorPage) {
          show(data.error);
        } else if (token !== null) {
          reloadUnlessFailing();
        }
        token = data.token;
      }
      setTimeout(poll, POLL_MS);
    }).catch(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
