"""Name the point layers, their common columns and their status workflows in one place."""

from __future__ import annotations

REHAB_STATION = "rehab_station"
SERVICE_CENTRE = "service_centre"
ACCESSIBLE_TOILET = "accessible_toilet"
SPORTS_SITE = "sports_site"
HOUSEHOLD = "household"

#: Layers that may be shown to the public; households are sensitive personal information (PIPL).
PUBLIC_LAYERS = (REHAB_STATION, SERVICE_CENTRE, ACCESSIBLE_TOILET, SPORTS_SITE)
ALL_LAYERS = (*PUBLIC_LAYERS, HOUSEHOLD)

ID = "id"
TOWN_CODE = "town_code"
VILLAGE_CODE = "village_code"
NAME = "name"
ADDRESS = "address"
LON = "lon"
LAT = "lat"
DATUM = "datum"
STATUS = "status"
VERSION = "version"

#: Columns every point layer has; everything else of a row is a layer attribute.
COMMON_COLUMNS = (ID, TOWN_CODE, VILLAGE_CODE, NAME, ADDRESS, LON, LAT, DATUM, STATUS)

FACILITY_STATUSES = ("planned", "open", "closed")
TOILET_STATUSES = ("planned", "under_construction", "completed", "accepted")
HOUSEHOLD_STATUSES = ("surveyed", "approved", "in_progress", "completed", "verified", "declined")

STATUSES = {
    REHAB_STATION: FACILITY_STATUSES,
    SERVICE_CENTRE: FACILITY_STATUSES,
    SPORTS_SITE: FACILITY_STATUSES,
    ACCESSIBLE_TOILET: TOILET_STATUSES,
    HOUSEHOLD: HOUSEHOLD_STATUSES,
}
