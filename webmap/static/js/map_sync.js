/* Keep Leaflet maps in step: moving or zooming one moves the others to the same centre and zoom.
 *
 * The page lists the maps' global names (folium's `map_<id>` variables) in the `data-sync-maps`
 * attribute of an element with id `synced-maps`, space-separated. No plugin: Leaflet's own events and
 * setView; a flag stops the maps from echoing each other's moves. */
(function () {
  "use strict";

  function syncMaps(maps) {
    var moving = false;
    maps.forEach(function (source) {
      source.on("move moveend zoomend", function () {
        if (moving) { return; }
        moving = true;
        try {
          maps.forEach(function (other) {
            if (other !== source) { other.setView(source.getCenter(), source.getZoom(), {animate: false}); }
          });
        } finally {
          moving = false;
        }
      });
    });
  }

  var box = document.getElementById("synced-maps");
  if (!box) { return; }
  var maps = (box.getAttribute("data-sync-maps") || "").split(/\s+/).filter(Boolean).map(function (name) {
    return window[name];
  }).filter(Boolean);
  if (maps.length > 1) {
    maps[0].whenReady(function () {
      maps.slice(1).forEach(function (m) { m.setView(maps[0].getCenter(), maps[0].getZoom(), {animate: false}); });
      syncMaps(maps);
      box.setAttribute("data-synced", "1");
    });
  }
  window.accessplanSyncMaps = syncMaps;
}());
