from __future__ import annotations

import re

import pytest

from layers.district import load_district
from layers.errors import DistrictDataError

# DOMAIN.md §3: Bishan's 15 township units, prefix 500120.
EXPECTED_TOWNS = {
    "001": "璧城街道", "002": "璧泉街道", "003": "青杠街道", "004": "来凤街道", "005": "丁家街道",
    "006": "大路街道", "100": "八塘镇", "101": "七塘镇", "102": "河边镇", "103": "福禄镇",
    "104": "大兴镇", "105": "正兴镇", "106": "广普镇", "107": "三合镇", "108": "健龙镇",
}  # fmt: skip


@pytest.fixture(scope="module")
def district():
    return load_district()


def test_bishan_is_the_default(district):
    assert (district.code, district.name, district.crs) == ("500120", "璧山区", "EPSG:32648")


def test_boundary_area_matches_the_published_figure(district):
    area_km2 = district.boundary.to_crs(district.crs).area.sum() / 1e6
    assert area_km2 == pytest.approx(914.4, rel=0.01)  # DOMAIN.md §8: ≈ 914.4 km²


def test_towns_are_the_fifteen_nbs_units(district):
    towns = district.towns
    assert dict(zip(towns["town_code"].str[6:], towns["name"], strict=True)) == EXPECTED_TOWNS
    assert all(re.fullmatch(r"500120\d{3}", c) for c in towns["town_code"])


def test_every_seat_lies_inside_the_boundary(district):
    outline = district.boundary.geometry.iloc[0]
    assert district.towns.geometry.within(outline).all()


def test_only_the_two_unmatched_seats_are_approximate(district):
    approximate = district.towns.loc[district.towns["seat_approximate"], "name"]
    assert sorted(approximate) == ["来凤街道", "璧泉街道"]


def test_a_folder_without_district_toml_is_refused(tmp_path):
    with pytest.raises(DistrictDataError, match="No district.toml"):
        load_district(tmp_path)


def test_a_missing_file_names_the_path_and_the_fix(tmp_path):
    (tmp_path / "district.toml").write_text(
        'code = "1"\nname = "x"\nprojected_crs = "EPSG:32648"\n[files]\nboundary = "b.geojson"\n',
        encoding="utf-8",
    )
    district = load_district(tmp_path)
    with pytest.raises(DistrictDataError, match=r"b\.geojson.*README\.md") as raised:
        _ = district.boundary
    # never the circular hint of old: `district generate` needs the very files that are missing
    assert "generate" not in str(raised.value)
    assert str(raised.value).startswith("区县数据文件")  # Chinese first, English after
    with pytest.raises(DistrictDataError, match="`villages` is not listed"):
        district.path("villages")


def test_a_district_toml_missing_keys_is_refused(tmp_path):
    (tmp_path / "district.toml").write_text('code = "1"\n', encoding="utf-8")
    with pytest.raises(DistrictDataError, match="lacks the key"):
        load_district(tmp_path)


def _two_town_district(tmp_path):
    (tmp_path / "district.toml").write_text(
        'code = "9"\nname = "甲区"\nname_en = "Jia District"\nprojected_crs = "EPSG:32648"\n'
        '[files]\ntowns = "towns.csv"\n',
        encoding="utf-8",
    )
    (tmp_path / "towns.csv").write_text(
        "code,name,name_en,kind,seat_lon,seat_lat\n"
        "900000001,甲街道,Jia Subdistrict,subdistrict,106.1,29.5\n"
        "900000100,乙镇,Yi Town,town,106.2,29.6\n",
        encoding="utf-8",
    )
    return load_district(tmp_path)


def test_town_and_district_names_come_in_either_language(tmp_path):
    district = _two_town_district(tmp_path)
    assert district.town_names() == {"900000001": "甲街道", "900000100": "乙镇"}
    assert district.town_names("zh") == district.town_names()
    assert district.town_names("en") == {"900000001": "Jia Subdistrict", "900000100": "Yi Town"}
    assert (district.display_name(), district.display_name("en")) == ("甲区", "Jia District")


def test_bishan_town_names_by_language(district):
    assert district.town_names()["500120100"] == "八塘镇"
    assert district.town_names("en")["500120001"] == "Bicheng Subdistrict"
    assert district.display_name("en") != district.display_name("zh") == "璧山区"
