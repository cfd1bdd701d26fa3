//! What the browser page is told about authentication (`GET /page-config.json`):
//! today only `auth.page_token_url`, the same-origin path where the page
//! fetches a fresh token when the server warns that its JWT expires. Nothing
//! in it is secret; it is swapped whole on reload like the rest of auth.

/// The longest `auth.page_token_url` accepted (a path, not a document).
const MAX_LEN: usize = 1024;

/// The page's settings, rendered once per (re)load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    json: String,
}

impl PageConfig {
    /// From `auth.page_token_url` (validated by [`problems`]; empty: off).
    pub fn new(token_url: &str) -> PageConfig {
        let url = (!token_url.is_empty()).then_some(token_url);
        PageConfig {
            json: serde_json::json!({ "tokenUrl": url }).to_string(),
        }
    }

    /// The body of `/page-config.json`: `{"tokenUrl":"/token"}` or `{"tokenUrl":null}`.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// What is wrong with `auth.page_token_url`, if anything. It must be an
/// absolute path on the page's own origin: the page's Content-Security-Policy
/// allows `connect-src 'self'` only: a scheme or a host (`//host`, which
/// browsers also read in `/\host`) would be blocked, and a relative path
/// would depend on where the page happens to be served.
pub fn problems(token_url: &str) -> Vec<String> {
    if token_url.is_empty() {
        return Vec::new();
    }
    let problem = if !token_url.starts_with('/') {
        Some("must be an absolute path on this server's origin, starting with `/` (e.g. `/token`), with no scheme or host")
    } else if token_url.starts_with("//") || token_url.starts_with("/\\") {
        Some("must not start with `//` or `/\\` (browsers read that as another host)")
    } else if token_url.len() > MAX_LEN {
        Some("at most 1024 characters")
    } else if !token_url
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        Some("only printable ASCII without spaces or `\\` (percent-encode anything else)")
    } else {
        None
    };
    problem
        .map(|p| {
            format!(
                "auth.page_token_url: {p}; the page may fetch only from its own origin (CSP connect-src 'self')"
            )
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_only() {
        for good in ["", "/token", "/api/chat-token?aud=chat", "/t%C3%A9"] {
            assert!(problems(good).is_empty(), "{good}");
        }
        for bad in [
            "token",
            "https://id.example.com/token",
            "//id.example.com/token",
            "/\\id.example.com/token",
            "/to ken",
            "/token\n",
            "/tøken",
            "javascript:alert(1)",
        ] {
            let p = problems(bad);
            assert_eq!(p.len(), 1, "{bad}");
            assert!(p[0].starts_with("auth.page_token_url: "), "{}", p[0]);
        }
        assert_eq!(problems(&format!("/{}", "a".repeat(MAX_LEN))).len(), 1);
    }

    #[test]
    fn json_names_the_url_or_null() {
        assert_eq!(PageConfig::new("/token").json(), r#"{"tokenUrl":"/token"}"#);
        assert_eq!(PageConfig::new("").json(), r#"{"tokenUrl":null}"#);
    }
}
