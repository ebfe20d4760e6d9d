//! PNG text with each glyph rasterized once: plotters' bitmap backend
//! outlines and rasterizes every glyph of every label anew (a fifth of a
//! catalog report's instructions), though a glyph's coverage depends only
//! on the character and the size. [`GlyphCache`] wraps the bitmap backend,
//! passes every drawing call through, and draws text as plotters' default
//! `draw_text` and its ab_glyph font do, with the same arithmetic in the
//! same order, reading each glyph's coverage from a per-thread table: the
//! same pixels (a test compares every chart's pixels with the uncached
//! backend's).

use std::collections::HashMap;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::style::{FAMILY, FONT};

/// One character at one size, as plotters draws it at the origin: the
/// font's glyph (kerning reads it), its advance, its vertical shift and
/// its pixels' coverage.
struct Glyph {
    id: ab_glyph::GlyphId,
    advance: f32,
    y_shift: i32,
    /// The pixels plotters would change: it draws every pixel of the
    /// glyph's box, and the bitmap leaves one whose alpha (the colour's
    /// times the coverage) is not above 0 as it was, so those are left out.
    /// None for a character without outline.
    coverage: Vec<(u32, u32, f32)>,
}

/// Glyphs by (character, size's bits).
type Glyphs = HashMap<(char, u32), std::rc::Rc<Glyph>>;

thread_local! {
    static GLYPHS: std::cell::RefCell<Glyphs> = std::cell::RefCell::new(HashMap::new());
}

/// The embedded font, parsed once.
fn face() -> Option<&'static FontRef<'static>> {
    static FACE: std::sync::OnceLock<Option<FontRef<'static>>> = std::sync::OnceLock::new();
    FACE.get_or_init(|| FontRef::try_from_slice(FONT).ok())
        .as_ref()
}

/// A bitmap backend whose text is drawn from cached glyphs.
pub(super) struct GlyphCache<'a>(pub(super) BitMapBackend<'a>);

type Err<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for GlyphCache<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Err<'a>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Err<'a>> {
        self.0.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Err<'a>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Err<'a>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    /// plotters' default `draw_path`: a path wider than a pixel is filled
    /// as its outline polygon, by [`super::polygon::fill_polygon`].
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Err<'a>> {
        if style.color().alpha == 0.0 {
            return Ok(());
        }
        if style.stroke_width() == 1 {
            return self.0.draw_path(path, style);
        }
        let p: Vec<_> = path.into_iter().collect();
        let v = plotters_backend::rasterizer::polygonize(&p[..], style.stroke_width());
        self.fill_polygon(v, &style.color())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Err<'a>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    /// plotters' default `fill_polygon`, the rasterizer without its
    /// allocations ([`super::polygon`]).
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Err<'a>> {
        let vert: Vec<_> = vert.into_iter().collect();
        super::polygon::fill_polygon(&mut self.0, &vert[..], style)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), Err<'a>> {
        self.0.estimate_text_size(text, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Err<'a>> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// plotters' default `draw_text`, its glyphs from the cache.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), Err<'a>> {
        let face = match face() {
            Some(f)
                if style.family().as_str() == FAMILY
                    && matches!(style.style(), FontStyle::Normal) =>
            {
                f
            }
            _ => return self.0.draw_text(text, style, pos),
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let layout = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let ((min_x, min_y), (max_x, max_y)) = layout;
        let width = max_x - min_x;
        let height = max_y - min_y;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        // TextStyle::draw's colour, then ab_glyph's FontDataInternal::draw
        let size = style.size();
        let font = face.as_scaled(size as f32);
        let mut x_shift = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let glyph = glyph(&font, c, size);
            if let Some(pid) = prev {
                x_shift += font.kern(pid, glyph.id);
            }
            prev = Some(glyph.id);
            let xs = x_shift as i32;
            for &(x, y, a) in &glyph.coverage {
                let (x, y) = (x as i32 + xs, y as i32 + glyph.y_shift);
                let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                    self.0.draw_pixel((x, y), color.mix(a as f64))?;
                }
            }
            x_shift += glyph.advance;
        }
        Ok(())
    }
}

/// Character `c` at `size`, rasterized on first use.
fn glyph(
    font: &ab_glyph::PxScaleFont<&FontRef<'static>>,
    c: char,
    size: f64,
) -> std::rc::Rc<Glyph> {
    let key = (c, (size as f32).to_bits());
    let make = || {
        let id = font.glyph_id(c);
        let mut glyph = Glyph {
            id,
            advance: font.h_advance(id),
            y_shift: 0,
            coverage: vec![],
        };
        if let Some(q) = font.outline_glyph(font.scaled_glyph(c)) {
            let rect = q.px_bounds();
            glyph.y_shift = ((size as f32) / 2.0 + rect.min.y) as i32;
            // a colour's alpha times a coverage not above 0 is not above
            // 0 either (NaN is kept: the bitmap blends it)
            q.draw(|x, y, c| {
                if c > 0.0 || c.is_nan() {
                    glyph.coverage.push((x, y, c))
                }
            });
        }
        std::rc::Rc::new(glyph)
    };
    GLYPHS
        .try_with(|g| g.borrow_mut().entry(key).or_insert_with(make).clone())
        .unwrap_or_else(|_| make())
}
