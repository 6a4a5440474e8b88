/* "Near me" (templates/public/nearme.html): geolocation button, in-place answers, route map.
   Without this script the form POSTs and the server answers a page. Coordinates go only in the POST
   body. Every text is set as plain text (textContent); the texts come translated from the page. */
(function () {
  "use strict";
  var form = document.getElementById("nearme-form");
  if (!form) { return; }
  var texts = JSON.parse(document.getElementById("nearme-texts").textContent);
  var status = document.getElementById("nearme-status");
  var section = document.getElementById("nearme-results");
  var tbody = document.getElementById("nearme-rows");
  var mapDiv = document.getElementById("nearme-map");
  var locate = document.getElementById("nearme-locate");
  var map = null, drawn = null, answer = null;

  function say(text) { status.textContent = text; }

  function draw(layer, profile) {
    if (!answer || typeof L === "undefined") { return; }
    var hit = null;
    answer.results.forEach(function (row) {
      if (row.layer !== layer) { return; }
      row.profiles.forEach(function (p) { if (p.profile === profile && p.found) { hit = p; } });
    });
    if (!hit) { return; }
    mapDiv.hidden = false;
    if (!map) { map = L.map(mapDiv, {attributionControl: false}); }
    if (drawn) { drawn.remove(); }
    var line = L.polyline(hit.route, {color: profile === "wheelchair" ? "#005a9c" : "#b3400a", weight: 5});
    drawn = L.featureGroup([
      line,
      L.circleMarker(hit.route[0], {radius: 7, color: "#222", fillOpacity: 0.9}),
      L.circleMarker(hit.route[hit.route.length - 1], {radius: 8, color: "#1a7f37", fillOpacity: 0.9})
        .bindTooltip(hit.name)
    ]).addTo(map);
    mapDiv.setAttribute("data-route-points", String(hit.route.length));
    map.invalidateSize();
    map.fitBounds(line.getBounds(), {padding: [20, 20]});
  }

  function cell(tr, tag, text) {
    var c = document.createElement(tag);
    c.textContent = text;
    if (tag === "th") { c.scope = "row"; }
    tr.appendChild(c);
    return c;
  }

  function render(data) {
    answer = data;
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    var first = null;
    data.results.forEach(function (row) {
      row.profiles.forEach(function (p) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-layer", row.layer);
        cell(tr, "th", row.label);
        cell(tr, "td", p.label);
        if (p.found) {
          cell(tr, "td", p.name);
          cell(tr, "td", p.distance);
          cell(tr, "td", p.time);
          var b = document.createElement("button");
          b.type = "button";
          b.className = "nearme-show";
          b.textContent = texts.show;
          b.setAttribute("data-layer", row.layer);
          b.setAttribute("data-profile", p.profile);
          cell(tr, "td", "").appendChild(b);
          if (!first) { first = [row.layer, p.profile]; }
        } else {
          cell(tr, "td", texts.none).colSpan = 4;
        }
        tbody.appendChild(tr);
      });
    });
    section.hidden = false;
    if (first) { draw(first[0], first[1]); }
  }

  function ask(body) {
    say(texts.searching);
    body.append("csrf_token", form.elements.csrf_token.value);
    fetch(form.action, {method: "POST", body: body, headers: {"Accept": "application/json"},
                        credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.error) { say(data.error); return; }
        render(data);
        say(texts.done);
      })
      .catch(function () { say(texts.failed); });
  }

  tbody.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest(".nearme-show") : null;
    if (b) { draw(b.getAttribute("data-layer"), b.getAttribute("data-profile")); }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = new FormData();
    body.append("place", form.elements.place.value);
    ask(body);
  });

  if (navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      say(texts.locating);
      navigator.geolocation.getCurrentPosition(function (pos) {
        var body = new FormData();
        body.append("lon", String(pos.coords.longitude));
        body.append("lat", String(pos.coords.latitude));
        ask(body);
      }, function () { say(texts.denied); }, {timeout: 15000});
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".nearme-show"), function (b) { b.hidden = false; });
  var initial = JSON.parse(document.getElementById("nearme-data").textContent);
  if (initial) { answer = initial; render(initial); }
})();
