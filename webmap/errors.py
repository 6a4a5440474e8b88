"""Error pages people can read: the site header, the page's language, what happened and a way back.

Every HTTP error of a page (400, 403, 404, 405, 413, 429, 500, ...) is drawn by ``error_page`` with
``templates/errors/http.html`` instead of Werkzeug's bare English page. A message given to ``abort``
is shown as it is (views pass translated text); Werkzeug's own English descriptions are replaced by
the translated explanation of the status. The JSON API answers with JSON (``security``).
"""

from __future__ import annotations

import logging
from types import MappingProxyType

from flask import g, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException, default_exceptions

from webmap.i18n import ERROR_PAGE_FLAG, N_

logger = logging.getLogger(__name__)

#: Status → (title, explanation) msgids; other statuses use ``_OTHER``.
STATUS_TEXTS = MappingProxyType(
    {
        400: (N_("请求有误"), N_("请求中的参数不正确。请检查链接或表单后重试。")),
        403: (N_("没有权限"), N_("您的账户无权访问此页面。如需访问，请联系系统管理员。")),
        404: (N_("找不到页面"), N_("没有这个页面或记录，可能已被删除，或链接有误。")),
        405: (N_("不支持此操作"), N_("此页面不接受这种请求方式。请从页面上的链接或按钮进入。")),
        413: (N_("请求太大"), N_("上传的内容太大。请上传更小的文件。")),
        429: (N_("请求太频繁"), N_("请求太频繁，请稍后再试。")),
        500: (N_("服务器出错"), N_("服务器处理请求时出错，已记录下来。请稍后再试；问题持续时请联系系统管理员。")),
    }
)
_OTHER = (N_("出错了"), N_("无法完成这个请求。"))


def error_page(error: HTTPException) -> tuple[str, int]:
    """Return the HTML error page for ``error`` and its status code, in this request's language."""
    status = error.code or 500
    title, explanation = STATUS_TEXTS.get(status, _OTHER)
    description = error.description
    default = default_exceptions.get(status)
    own_message = description and (default is None or description != default.description)
    message = description if own_message and status != 500 else gettext(explanation)
    setattr(g, ERROR_PAGE_FLAG, True)
    try:
        body = render_template(
            "errors/http.html",
            status=status,
            title=gettext(title),
            message=message,
            back_url=_same_site_referrer(),
        )
    except Exception:  # the page itself failed (e.g. the store is down): plain text, still translated
        logger.exception("Could not render the error page for HTTP %s", status)
        body = f"{status} {gettext(title)}: {message}"
    return body, status


def _same_site_referrer() -> str | None:
    """Return the page the visitor came from when it is on this site (for "back"), else None."""
    referrer = request.referrer
    if referrer and referrer.startswith(request.host_url) and referrer != request.url:
        return referrer
    return None
