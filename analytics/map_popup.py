"""Map popups whose values are text, never markup (:class:`TextPopup`, :func:`popup`).

Split from :mod:`analytics.map_parts`, which re-exports both.
"""

from __future__ import annotations

import folium
from folium.features import GeoJsonDetail
from folium.template import Template as FoliumTemplate

__all__ = ["TextPopup", "popup"]

#: folium's popup script writes each value into ``innerHTML`` as it is; ours escapes it first.
_RAW_VALUE = """        } else if (typeof(feature)=='object') {
            return JSON.stringify(feature);
        } else {
            return feature;
        }"""
_ESCAPED_VALUE = """        } else if (typeof(feature)=='object') {
            return tianyaEscape(JSON.stringify(feature));
        } else {
            return tianyaEscape(feature);
        }"""
_ESCAPE = """    let tianyaEscape = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
        .replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
"""


class TextPopup(folium.GeoJsonPopup):
    """folium's ``GeoJsonPopup`` whose values are text, never markup.

    folium (0.17-0.20) concatenates each property into the popup's ``innerHTML``: a case
    title sent by the public through Open311 or the hotline (``<img src=x onerror=...>``)
    ran as script in every saved map that showed it. The values are HTML-escaped in the
    page instead; the aliases are ours.
    """

    _template = FoliumTemplate(
        """
    {% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindPopup("""
        + GeoJsonDetail.base_template.replace(_RAW_VALUE, _ESCAPED_VALUE).replace(
            "    let handleObject", _ESCAPE + "    let handleObject", 1
        )
        + """,{{ this.popup_options | tojavascript }});
    {% endmacro %}
    """
    )


if _RAW_VALUE not in GeoJsonDetail.base_template:  # pragma: no cover
    raise ImportError("folium's GeoJsonPopup script changed: check TextPopup's escaping")


def popup(fields, aliases) -> folium.GeoJsonPopup:
    """A popup table of ``fields`` titled by ``aliases``, its values shown as text."""
    return TextPopup(
        fields=list(fields), aliases=list(aliases), localize=False, labels=True, max_width=360
    )
