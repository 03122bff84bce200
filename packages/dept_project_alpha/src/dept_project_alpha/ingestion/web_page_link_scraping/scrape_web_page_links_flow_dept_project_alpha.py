"""Web page link scraping: HTML pages -> a table of the links they contain."""

from typing import Any

from airnub_core.config import FetchSettings, Source
from airnub_core.contracts import produces
from airnub_core.flows import category_flow, settings_for
from airnub_core.tasks import extract_links_task, write_csv_task


class LinkScrapingSettings(FetchSettings):
    pages: list[Source]
    same_site_only: bool = False


LINKS = produces(__name__, "links.csv")


@category_flow
def scrape_web_page_links(overrides: dict | None = None) -> dict[str, Any]:
    settings = settings_for(LinkScrapingSettings, __name__, overrides)
    rows = []
    for page in settings.pages:
        rows.extend(extract_links_task(page, settings.same_site_only, **settings.reader_options()))
    path = write_csv_task(LINKS.path(), rows, ["page", "url", "text"])
    return {"outputs": [str(path)], "pages": len(settings.pages), "links": len(rows)}
