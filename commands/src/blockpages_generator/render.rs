//! The HTML pages: compile-time templates (`commands/templates/blockpages/`) that escape every
//! value, and an allow-list sanitizer for the only fields that may hold markup (`why`, `who`).

use askama::Template;

use super::records::{human_date, BlockedItem};

/// One rendered file.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub file_name: String,
    pub html: String,
}

/// Keeps links and simple markup of `why` / `who`; drops everything else (scripts and styles
/// with their content, event handlers, images and any other external asset, `javascript:` and
/// relative URLs).
pub struct Sanitizer(ammonia::Builder<'static>);

const ALLOWED_TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "u",
    "ul",
];

impl Sanitizer {
    pub fn new() -> Self {
        let mut builder = ammonia::Builder::default();
        builder
            .tags(ALLOWED_TAGS.iter().copied().collect())
            .generic_attributes(["title"].into_iter().collect())
            .tag_attributes(
                [("a", ["href"].into_iter().collect())]
                    .into_iter()
                    .collect(),
            )
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("noopener noreferrer nofollow"));
        Sanitizer(builder)
    }

    pub fn clean(&self, html: &str) -> String {
        self.0.clean(html).to_string()
    }
}

impl Default for Sanitizer {
    fn default() -> Self {
        Self::new()
    }
}

struct IndexEntry<'a> {
    date: String,
    href: &'a str,
    name: &'a str,
}

#[derive(Template)]
#[template(path = "blockpages/index.html")]
struct IndexPage<'a> {
    entries: Vec<IndexEntry<'a>>,
}

#[derive(Template)]
#[template(path = "blockpages/record.html")]
struct RecordPage<'a> {
    name: &'a str,
    why: Option<String>,
    who: Option<String>,
    soft_block: bool,
    date: String,
    bug: Option<&'a str>,
}

/// `index.html`: every item, in the given order.
pub fn render_index(items: &[BlockedItem]) -> Result<Page, askama::Error> {
    let page = IndexPage {
        entries: items
            .iter()
            .map(|item| IndexEntry {
                date: human_date(item.created),
                href: &item.file_name,
                name: &item.name,
            })
            .collect(),
    };
    Ok(Page {
        file_name: "index.html".into(),
        html: page.render()?,
    })
}

/// The page of one item.
pub fn render_record(item: &BlockedItem, sanitizer: &Sanitizer) -> Result<Page, askama::Error> {
    let page = RecordPage {
        name: &item.name,
        why: item.why.as_deref().map(|html| sanitizer.clean(html)),
        who: item.who.as_deref().map(|html| sanitizer.clean(html)),
        soft_block: item.soft_block,
        date: human_date(item.created),
        bug: item.bug.as_ref().map(|url| url.as_str()),
    };
    Ok(Page {
        file_name: item.file_name.clone(),
        html: page.render()?,
    })
}

/// `index.html` first, then one page per item.
pub fn render_all(items: &[BlockedItem]) -> Result<Vec<Page>, askama::Error> {
    let sanitizer = Sanitizer::new();
    let mut pages = Vec::with_capacity(items.len() + 1);
    pages.push(render_index(items)?);
    for item in items {
        pages.push(render_record(item, &sanitizer)?);
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::super::records::parse_record;
    use super::*;
    use serde_json::json;

    fn item(details: serde_json::Value, severity: i64) -> BlockedItem {
        let mut item = parse_record(
            "addons",
            &json!({"id": "r1", "last_modified": 1_368_400_000_000u64, "severity": severity,
                    "details": details}),
        );
        item.file_name = "i1.html".into();
        item
    }

    #[test]
    fn names_are_escaped_on_both_pages() {
        let it = item(
            json!({"name": "<script>alert('x')</script> & co", "created": "2013-05-13T00:00:00Z"}),
            3,
        );
        let index = render_index(std::slice::from_ref(&it)).unwrap().html;
        let page = render_record(&it, &Sanitizer::new()).unwrap().html;
        for html in [&index, &page] {
            assert!(!html.contains("<script>alert"), "{html}");
            assert!(
                html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
                "{html}"
            );
        }
        assert!(
            index.contains(r#"<span class="dt">May 13, 2013</span>: <a href="i1.html">"#),
            "{index}"
        );
    }

    #[test]
    fn why_keeps_links_and_loses_handlers_and_scripts() {
        let it = item(
            json!({"name": "n", "why": r#"See <a href="https://bugzilla.mozilla.org/1" onclick="steal()">bug</a><script>x()</script><img src="https://evil/x.png"> <b>now</b> <a href="javascript:alert(1)">js</a>"#}),
            3,
        );
        let page = render_record(&it, &Sanitizer::new()).unwrap().html;
        assert!(page.contains(r#"<a href="https://bugzilla.mozilla.org/1" rel="noopener noreferrer nofollow">bug</a>"#), "{page}");
        assert!(page.contains("<b>now</b>"), "{page}");
        for bad in [
            "onclick",
            "steal()",
            "<script",
            "x()",
            "<img",
            "javascript:",
        ] {
            assert!(!page.contains(bad), "{bad} in {page}");
        }
    }

    #[test]
    fn soft_and_hard_block_wording() {
        let soft = render_record(&item(json!({"name": "n"}), 1), &Sanitizer::new())
            .unwrap()
            .html;
        let hard = render_record(&item(json!({"name": "n"}), 3), &Sanitizer::new())
            .unwrap()
            .html;
        assert!(soft.contains("may choose to continue using it"));
        assert!(!soft.contains("automatically disabled"));
        assert!(hard.contains("automatically disabled and no longer usable"));
        assert!(!hard.contains("may choose to continue"));
        // "Who is affected?" only when set; no bug, no link.
        assert!(!hard.contains("Who is affected?"));
        assert!(!hard.contains("View block request"));
        let full = render_record(
            &item(
                json!({"name": "n", "who": "All users", "bug": "https://bugzilla.mozilla.org/9"}),
                3,
            ),
            &Sanitizer::new(),
        )
        .unwrap()
        .html;
        assert!(
            full.contains("<dt>Who is affected?</dt>\n<dd>All users</dd>"),
            "{full}"
        );
        assert!(full.contains(r#"Blocked on May 12, 2013. <a href="https://bugzilla.mozilla.org/9">View block request</a>."#), "{full}");
    }

    #[test]
    fn pages_are_self_contained_html5_in_english() {
        let page = render_record(&item(json!({"name": "n"}), 3), &Sanitizer::new())
            .unwrap()
            .html;
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\""));
        assert!(page.contains("<meta charset=\"utf-8\">"));
        assert!(page.contains("<style>"));
        for external in ["<link", "<script", "<img", "src="] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
