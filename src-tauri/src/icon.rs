//! The tray icon: one committed PNG per state and panel theme (`icons/tray/`, drawn by
//! `icons/generate.sh`), with the unread badge painted on at run time: a number, "99+", or a
//! dot when a room only asks for attention.
use tauri::image::Image;

/// What the icon says about the app, worst first when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayState {
    LoggedOut,
    UpToDate,
    Syncing,
    Paused,
    Error,
    Offline,
    /// Something waits on someone else (a file being edited online): amber with a clock, not
    /// the red error, since there is nothing for the member to fix.
    Attention,
}

/// Light panels get the deep colours, dark panels the bright ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    /// `PASSERELLE_TRAY_THEME=dark|light`, else GTK's dark preference, else light.
    pub fn detect() -> Theme {
        let hint = std::env::var("PASSERELLE_TRAY_THEME")
            .or_else(|_| std::env::var("GTK_THEME"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if hint.contains("dark") {
            Theme::Dark
        } else {
            Theme::Light
        }
    }
}

/// What the badge shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Badge {
    None,
    /// Something asks for attention but nothing is unread.
    Dot,
    Count(u64),
}

impl Badge {
    /// The text drawn: "" for none or dot, the number up to 99, then "99+".
    pub fn text(&self) -> String {
        match self {
            Badge::None | Badge::Dot => String::new(),
            Badge::Count(0) => String::new(),
            Badge::Count(n) if *n > 99 => "99+".into(),
            Badge::Count(n) => n.to_string(),
        }
    }
}

fn png(state: TrayState, theme: Theme) -> &'static [u8] {
    use {Theme::*, TrayState::*};
    match (state, theme) {
        (LoggedOut, Light) => include_bytes!("../../icons/tray/logged_out-light.png"),
        (LoggedOut, Dark) => include_bytes!("../../icons/tray/logged_out-dark.png"),
        (UpToDate, Light) => include_bytes!("../../icons/tray/up_to_date-light.png"),
        (UpToDate, Dark) => include_bytes!("../../icons/tray/up_to_date-dark.png"),
        (Syncing, Light) => include_bytes!("../../icons/tray/syncing-light.png"),
        (Syncing, Dark) => include_bytes!("../../icons/tray/syncing-dark.png"),
        (Paused, Light) => include_bytes!("../../icons/tray/paused-light.png"),
        (Paused, Dark) => include_bytes!("../../icons/tray/paused-dark.png"),
        (Error, Light) => include_bytes!("../../icons/tray/error-light.png"),
        (Error, Dark) => include_bytes!("../../icons/tray/error-dark.png"),
        (Offline, Light) => include_bytes!("../../icons/tray/offline-light.png"),
        (Offline, Dark) => include_bytes!("../../icons/tray/offline-dark.png"),
        (Attention, Light) => include_bytes!("../../icons/tray/attention-light.png"),
        (Attention, Dark) => include_bytes!("../../icons/tray/attention-dark.png"),
    }
}

/// The icon for a state with its badge, as RGBA.
pub fn render(state: TrayState, theme: Theme, badge: &Badge) -> tauri::Result<Image<'static>> {
    let base = Image::from_bytes(png(state, theme))?;
    let (width, height) = (base.width(), base.height());
    let mut canvas = Canvas { rgba: base.rgba().to_vec(), width: width as usize, height: height as usize };
    match badge {
        Badge::None | Badge::Count(0) => {}
        Badge::Dot => canvas.dot(),
        Badge::Count(_) => canvas.count(&badge.text()),
    }
    Ok(Image::new_owned(canvas.rgba, width, height))
}

/// A 3×5 pixel font: enough for digits and "+", legible once scaled.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        _ => [0; 5],
    }
}

const BADGE: [u8; 3] = [0xdc, 0x26, 0x26];
const WHITE: [u8; 3] = [0xff, 0xff, 0xff];

struct Canvas {
    rgba: Vec<u8>,
    width: usize,
    height: usize,
}

impl Canvas {
    /// Blends `color` at `alpha` (0..=1) over the pixel.
    fn blend(&mut self, x: usize, y: usize, color: [u8; 3], alpha: f32) {
        if x >= self.width || y >= self.height || alpha <= 0.0 {
            return;
        }
        let i = (y * self.width + x) * 4;
        let Some(px) = self.rgba.get_mut(i..i + 4) else { return };
        let dst_a = px[3] as f32 / 255.0;
        let out_a = alpha + dst_a * (1.0 - alpha);
        for c in 0..3 {
            let src = color[c] as f32;
            let dst = px[c] as f32;
            px[c] = ((src * alpha + dst * dst_a * (1.0 - alpha)) / out_a.max(f32::EPSILON)).round() as u8;
        }
        px[3] = (out_a * 255.0).round() as u8;
    }

    /// A filled rounded rectangle (a pill when the radius is half the height), anti-aliased by
    /// 4×4 supersampling.
    fn pill(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, color: [u8; 3]) {
        let r = (y1 - y0) / 2.0;
        // A shape narrower than it is tall degrades to a circle rather than a negative span.
        let (lo, hi) = (x0 + r, (x1 - r).max(x0 + r));
        let inside = |px: f32, py: f32| {
            let cx = px.clamp(lo, hi);
            let cy = (y0 + y1) / 2.0;
            (px - cx).powi(2) + (py - cy).powi(2) <= r * r
        };
        for y in y0.floor().max(0.0) as usize..(y1.ceil() as usize).min(self.height) {
            for x in x0.floor().max(0.0) as usize..(x1.ceil() as usize).min(self.width) {
                let mut hits = 0;
                for sy in 0..4 {
                    for sx in 0..4 {
                        if inside(x as f32 + (sx as f32 + 0.5) / 4.0, y as f32 + (sy as f32 + 0.5) / 4.0) {
                            hits += 1;
                        }
                    }
                }
                self.blend(x, y, color, hits as f32 / 16.0);
            }
        }
    }

    fn dot(&mut self) {
        let w = self.width as f32;
        let d = w * 0.40;
        self.pill(w - d - 1.0, 1.0, w - 1.0, d + 1.0, WHITE);
        self.pill(w - d + 2.0, 4.0, w - 4.0, d - 2.0, BADGE);
    }

    fn count(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let w = self.width as f32;
        // Bigger digits for one or two characters; "99+" needs a smaller scale to fit.
        let scale = if chars.len() >= 3 { (self.width / 22).max(1) } else { (self.width / 16).max(1) };
        let gap = scale;
        let text_w = chars.len() * 3 * scale + chars.len().saturating_sub(1) * gap;
        let text_h = 5 * scale;
        let pad = 2 * scale;
        let height = (text_h + 2 * pad) as f32;
        let width = (text_w as f32 + 2.0 * pad as f32).max(height);
        let (x0, y0) = (w - width - 1.0, 1.0);
        self.pill(x0 - 2.0, y0 - 1.0, w, y0 + height + 2.0, WHITE);
        self.pill(x0, y0, w - 2.0, y0 + height, BADGE);
        let mut cx = (x0 + (width - 2.0 - text_w as f32) / 2.0).round() as usize;
        let cy = (y0 + (height - text_h as f32) / 2.0).round() as usize;
        for c in chars {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.blend(cx + col * scale + dx, cy + row * scale + dy, WHITE, 1.0);
                            }
                        }
                    }
                }
            }
            cx += 3 * scale + gap;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_text_caps_at_99_plus() {
        assert_eq!(Badge::Count(7).text(), "7");
        assert_eq!(Badge::Count(99).text(), "99");
        assert_eq!(Badge::Count(100).text(), "99+");
        assert_eq!(Badge::Dot.text(), "");
    }

    #[test]
    fn every_state_renders_and_the_badge_paints_red() {
        for state in [TrayState::LoggedOut, TrayState::UpToDate, TrayState::Syncing, TrayState::Paused, TrayState::Error, TrayState::Offline, TrayState::Attention] {
            for theme in [Theme::Light, Theme::Dark] {
                let plain = render(state, theme, &Badge::None).unwrap();
                assert_eq!((plain.width(), plain.height()), (64, 64));
                for badge in [Badge::Dot, Badge::Count(3), Badge::Count(250)] {
                    let img = render(state, theme, &badge).unwrap();
                    // Somewhere in the top-right quarter there is the badge's red.
                    let red = (0..32).flat_map(|y| (32..64).map(move |x| (x, y))).any(|(x, y)| {
                        let i = (y * 64 + x) * 4;
                        img.rgba()[i..i + 3] == BADGE
                    });
                    assert!(red, "{state:?} {theme:?} {badge:?}");
                }
            }
        }
    }

    /// `PASSERELLE_ICON_PREVIEW=dir cargo test -p passerelle-desktop icon` writes the rendered
    /// icons as PNG files, to look at them.
    #[test]
    fn preview_when_asked() {
        let Ok(dir) = std::env::var("PASSERELLE_ICON_PREVIEW") else { return };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, state, badge) in [
            ("up_to_date-3", TrayState::UpToDate, Badge::Count(3)),
            ("syncing-42", TrayState::Syncing, Badge::Count(42)),
            ("error-250", TrayState::Error, Badge::Count(250)),
            ("paused-dot", TrayState::Paused, Badge::Dot),
            ("offline", TrayState::Offline, Badge::None),
            ("attention", TrayState::Attention, Badge::None),
            ("logged_out", TrayState::LoggedOut, Badge::None),
        ] {
            let img = render(state, Theme::Light, &badge).unwrap();
            let file = std::fs::File::create(dir.join(format!("{name}.ppm"))).unwrap();
            let mut w = std::io::BufWriter::new(file);
            use std::io::Write;
            // PPM over white: no PNG encoder needed in tests.
            write!(w, "P6\n64 64\n255\n").unwrap();
            for px in img.rgba().chunks(4) {
                let a = px[3] as u32;
                for c in 0..3 {
                    w.write_all(&[((px[c] as u32 * a + 255 * (255 - a)) / 255) as u8]).unwrap();
                }
            }
        }
    }
}

