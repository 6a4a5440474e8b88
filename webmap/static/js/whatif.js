/* The what-if page: draws the demand and the sites on the map, sends each edit, shows the answer.
 * Every text from the server is set with textContent (never innerHTML); the page's forms work without
 * this script too (each edit then reloads the page). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("whatif-config").textContent);
  var text = config.text;
  var map = window.accessplanWhatIfMap;
  map.createPane("whatif-demand").style.zIndex = 450;  // above the district's white sheet (overlay pane, 400)
  var renderer = L.canvas({padding: 0.5, pane: "whatif-demand"});
  var pointLayer = L.layerGroup().addTo(map);
  var siteLayer = L.layerGroup().addTo(map);
  var markers = [];
  var COLOURS = {covered: "#1a7f37", uncovered: "#c62828"};
  var root = document.body;
  var edits = 0;

  function el(tag, value, className) {
    var node = document.createElement(tag);
    if (value !== undefined && value !== null) { node.textContent = String(value); }
    if (className) { node.className = className; }
    return node;
  }
  function pct(value) { return value === null || value === undefined ? "—" : (100 * value).toFixed(1) + "%"; }
  function say(message, isError) {
    var box = document.getElementById("whatif-message");
    box.textContent = message;
    box.classList.toggle("whatif-error", Boolean(isError));
  }

  function paint(index, covered) {
    var colour = covered ? COLOURS.covered : COLOURS.uncovered;
    markers[index].setStyle({color: colour, fillColor: colour});
  }
  function drawPoints(state) {
    pointLayer.clearLayers();
    markers = state.points.map(function (p) {
      return L.circleMarker(p, {renderer: renderer, radius: 3, weight: 1, fillOpacity: 0.8, interactive: false,
                                color: COLOURS.uncovered, fillColor: COLOURS.uncovered}).addTo(pointLayer);
    });
    state.covered.forEach(function (i) { paint(i, true); });
  }
  function repaint(state) {
    if (state.changed) {
      state.changed.covered.forEach(function (i) { paint(i, true); });
      state.changed.uncovered.forEach(function (i) { paint(i, false); });
    } else if (state.covered) {
      var covered = new Set(state.covered);
      markers.forEach(function (_m, i) { paint(i, covered.has(i)); });
    }
  }

  function fillTable(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    var fresh = document.createElement("tbody");
    rows.forEach(function (row) {
      var tr = el("tr");
      tr.dataset.code = row.code;
      var head = el("th", row.name);
      head.scope = "row";
      tr.appendChild(head);
      [row.points, row.covered, pct(row.share), row.unreachable].forEach(function (v) { tr.appendChild(el("td", v)); });
      fresh.appendChild(tr);
    });
    body.replaceWith(fresh);
  }
  function showTotals(state) {
    document.getElementById("total-covered").textContent = state.summary.covered;
    document.getElementById("total-points").textContent = state.summary.points;
    document.getElementById("total-share").textContent = pct(state.summary.share);
    document.getElementById("total-unreachable").textContent = state.summary.unreachable;
  }

  function hidden(name, value) {
    var input = el("input");
    input.type = "hidden"; input.name = name; input.value = value;
    return input;
  }
  function siteStatus(site) { return !site.in_service ? text.closed : (site.existing ? text.existing : text.planned); }
  function siteAction(site) { return !site.in_service ? "reopen" : (site.existing ? "close" : "remove"); }

  function showSites(sites) {
    var focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.site : null;
    var body = document.createElement("tbody");
    var select = document.getElementById("move-id");
    var chosen = select.value;
    select.textContent = "";
    siteLayer.clearLayers();
    sites.forEach(function (site) {
      var tr = el("tr");
      tr.dataset.site = site.id;
      var head = el("th", site.id);
      head.scope = "row";
      tr.appendChild(head);
      [site.name || site.place, site.lon, site.lat, siteStatus(site)].forEach(function (v) { tr.appendChild(el("td", v)); });
      var cell = el("td");
      var form = el("form", null, "whatif-edit");
      form.method = "post"; form.action = config.edit_url;
      form.appendChild(hidden("site_id", site.id));
      form.appendChild(hidden("action", siteAction(site)));
      var button = el("button", text[siteAction(site)] + " " + site.id);
      button.type = "submit";
      button.dataset.site = site.id;
      form.appendChild(button);
      cell.appendChild(form);
      tr.appendChild(cell);
      body.appendChild(tr);

      var option = el("option", site.label);
      option.value = site.id;
      select.appendChild(option);

      var kind = !site.in_service ? "closed" : (site.existing ? "existing" : "planned");
      var marker = L.marker([site.lat, site.lon], {
        draggable: true, keyboard: true, title: site.label,
        icon: L.divIcon({className: "whatif-site whatif-site-" + kind, iconSize: [16, 16]})
      });
      marker.bindTooltip(el("span", site.label + " · " + siteStatus(site)));
      marker.on("dragend", function () {
        var at = marker.getLatLng();
        send({action: "move", site_id: site.id, lon: at.lng.toFixed(6), lat: at.lat.toFixed(6)});
      });
      marker.addTo(siteLayer);
    });
    if (chosen) { select.value = chosen; }
    document.querySelector("#whatif-sites tbody").replaceWith(body);
    if (focused) {
      var again = body.querySelector("button[data-site='" + CSS.escape(focused) + "']");
      (again || document.getElementById("sites-heading")).focus();
    }
  }

  function show(state) {
    showTotals(state);
    fillTable("whatif-by-town", state.by_town);
    fillTable("whatif-by-village", state.by_village);
    showSites(state.sites);
    repaint(state);
  }

  function send(edit) {
    root.dataset.whatifBusy = "1";
    return fetch(config.edit_url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": config.csrf},
      body: JSON.stringify(edit)
    }).then(function (response) {
      return response.json().then(function (data) { return {ok: response.ok, data: data}; },
                                  function () { return {ok: false, data: {}}; });
    }).then(function (answer) {
      if (!answer.ok) {
        say(text.failed + (answer.data.error || text.network), true);
      } else {
        show(answer.data);
        say(text.done.replace("{ms}", answer.data.server_ms), false);
      }
    }, function () {
      say(text.network, true);
    }).then(function () {
      edits += 1;
      root.dataset.whatifEdits = String(edits);
      delete root.dataset.whatifBusy;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("whatif-edit")) { return; }
    event.preventDefault();
    var edit = {};
    new FormData(form).forEach(function (value, key) { if (key !== "csrf_token") { edit[key] = value; } });
    send(edit);
  });
  map.on("click", function (event) {
    send({action: "add", lon: event.latlng.lng.toFixed(6), lat: event.latlng.lat.toFixed(6)});
  });

  fetch(config.state_url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (response) { return response.json(); })
    .then(function (state) {
      drawPoints(state);
      show(state);
      root.dataset.whatifReady = "1";
    }, function () { say(text.network, true); });
})();
