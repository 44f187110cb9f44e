//! The HTML listing of a directory without `index.html` (pure): one row per entry with its
//! name (a relative link), its size (the link's `Tsize`) and its CID (a link to
//! `/ipfs/<cid>`). Every name is HTML-escaped in text and percent-encoded in links.

use std::fmt::Write;

use percent_encoding::utf8_percent_encode;

use super::request::SEGMENT;
use crate::content::exporter::ListEntry;

/// Escaped in names placed in a link's path or query: also the query's separators and quotes.
const LINK: &percent_encoding::AsciiSet = &SEGMENT.add(b'&').add(b'+').add(b'=').add(b'\'');

/// Escape text for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sizes as people read them: `812 B`, `4.0 KiB`, `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The listing page of the directory at `content_path` (`/ipfs/<cid>/…`).
pub fn render(
    content_path: &str,
    dir_cid: &str,
    entries: &[ListEntry],
    has_parent: bool,
) -> String {
    let title = escape_html(content_path);
    let mut html = String::with_capacity(512 + entries.len() * 256);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif}}td{{padding:2px 12px}}.cid{{font-family:monospace;font-size:smaller}}</style>\n\
         </head>\n<body>\n<h1>Index of {title}</h1>\n<p class=\"cid\">{}</p>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>CID</th></tr>\n",
        escape_html(dir_cid)
    );
    if has_parent {
        html.push_str("<tr><td><a href=\"../\">..</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        let name = escape_html(&e.name);
        let href = escape_html(&utf8_percent_encode(&e.name, LINK).to_string());
        let cid = e.cid.to_string();
        let _ = writeln!(
            html,
            "<tr><td><a href=\"{href}\">{name}</a></td><td title=\"{} bytes\">{}</td>\
             <td class=\"cid\"><a href=\"/ipfs/{cid}?filename={href}\">{cid}</a></td></tr>",
            e.tsize,
            human_size(e.tsize)
        );
    }
    html.push_str("</table>\n</body>\n</html>\n");
    html
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        let cid = crate::content::cid::block_cid(0x55, 1, b"x");
        let entries = vec![
            ListEntry {
                name: "<script>alert('x')</script>&\".txt".into(),
                cid,
                tsize: 2048,
            },
            ListEntry {
                name: "a b#c?.txt".into(),
                cid,
                tsize: 5,
            },
        ];
        let html = render("/ipfs/x/<d>", "bafy", &entries, true);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;.txt"));
        assert!(html.contains("Index of /ipfs/x/&lt;d&gt;"));
        assert!(html.contains("href=\"a%20b%23c%3F.txt\""), "{html}");
        assert!(
            html.contains("href=\"%3Cscript%3Ealert(%27x%27)%3C%2Fscript%3E%26%22.txt\""),
            "{html}"
        );
        assert!(html.contains("2.0 KiB"));
        assert!(html.contains("5 B"));
        assert!(html.contains(&cid.to_string()));
        assert!(html.contains("href=\"../\""));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1 << 20), "1.0 MiB");
    }
}
