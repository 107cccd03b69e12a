//! A pairing code as a QR code on a terminal, for a phone or a tablet to scan, and the
//! web app's pairing page that a guardian's phone scans.
//!
//! Two modules to a character: the upper and lower half blocks (`▀`, `▄`), the full
//! block and a space, with the standard quiet zone of four modules around. Dark
//! modules are drawn as the glyphs' ink, so on paper or a light terminal the code is
//! dark on light as scanners expect; on a terminal [`Colours::Terminal`] pins the ink
//! to black and the ground to white, so a dark theme does not invert it.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use qrcode::types::QrError;

/// Whether to pin the code's colours with ANSI escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colours {
    /// Black on white, whatever the terminal's theme.
    Terminal,
    /// No escapes: for a file or a pipe.
    Plain,
}

/// `text` as a QR code, one string per line of the terminal; an error only for a text
/// too long for any QR code.
pub fn lines(text: &str, colours: Colours) -> Result<Vec<String>, QrError> {
    let code = QrCode::new(text.as_bytes())?;
    let image = code.render::<Dense1x2>().quiet_zone(true).build();
    Ok(image
        .lines()
        .map(|line| match colours {
            Colours::Terminal => format!("\x1b[30;107m{line}\x1b[0m"),
            Colours::Plain => line.to_owned(),
        })
        .collect())
}

/// The web app's pairing page for `code` on the hub at `hub` (HOST:PORT):
/// `https://HOST:PORT/pair#CODE`. The code rides in the fragment, which no browser
/// sends to any server.
pub fn pairing_page(hub: &str, code: &str) -> String {
    let hub = hub.strip_suffix(":443").unwrap_or(hub);
    format!("https://{hub}/pair#{code}")
}

/// A SHA-256 fingerprint as the web app's pairing page shows it: upper-case hex in
/// groups of four, so a guardian can compare the two screens.
pub fn fingerprint_groups(hex: &str) -> String {
    let upper = hex.to_ascii_uppercase();
    let groups: Vec<&str> = upper
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_grouped_as_the_pairing_page_shows_them() {
        assert_eq!(fingerprint_groups("0a1b2c3d4e5f"), "0A1B 2C3D 4E5F");
        assert_eq!(fingerprint_groups("abcdef"), "ABCD EF");
    }

    #[test]
    fn the_pairing_page_keeps_the_code_in_the_fragment() {
        assert_eq!(
            pairing_page("hub.local:7443", "hh1.ab.cd"),
            "https://hub.local:7443/pair#hh1.ab.cd"
        );
        assert_eq!(
            pairing_page("hub.local:443", "hh1.ab.cd"),
            "https://hub.local/pair#hh1.ab.cd"
        );
    }

    const QUIET_ZONE: usize = 4;

    /// The modules a picture shows, read back from its half blocks: true for dark.
    fn modules(lines: &[String]) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in lines {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for glyph in line.chars() {
                let (t, b) = match glyph {
                    ' ' => (false, false),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    '█' => (true, true),
                    other => panic!("{other:?} is not a half block"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn the_picture_holds_the_codes_modules_inside_a_quiet_zone() {
        let text = "hh1.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789.some-more-of-the-code";
        let lines = lines(text, Colours::Plain).unwrap();
        let code = QrCode::new(text.as_bytes()).unwrap();
        let width = code.width();
        let side = width + 2 * QUIET_ZONE;
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(
            lines.iter().all(|l| l.chars().count() == side),
            "{lines:#?}"
        );

        let seen = modules(&lines);
        let expected = code.to_colors();
        for y in 0..side {
            for x in 0..side {
                let inside = (QUIET_ZONE..QUIET_ZONE + width).contains(&x)
                    && (QUIET_ZONE..QUIET_ZONE + width).contains(&y);
                let dark = inside
                    && expected[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == qrcode::Color::Dark;
                assert_eq!(seen[y][x], dark, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn on_a_terminal_every_line_is_black_on_white_and_reset() {
        let plain = lines("hh1.code", Colours::Plain).unwrap();
        let coloured = lines("hh1.code", Colours::Terminal).unwrap();
        assert_eq!(plain.len(), coloured.len());
        for (plain, coloured) in plain.iter().zip(&coloured) {
            assert_eq!(coloured, &format!("\x1b[30;107m{plain}\x1b[0m"));
        }
    }
}
