//! plotters' polygon filling (`plotters_backend::rasterizer::fill_polygon`,
//! which draws every line wider than a pixel: an example run's series)
//! without its per-scanline allocations and with each edge's position
//! computed once per scanline instead of at every comparison of the sort:
//! the same calls to the backend, with the same arguments, in the same
//! order, so the same pixels (a test draws random wide paths both ways and
//! compares them; `cached_glyphs_draw_the_same_pixels` compares every
//! chart). A fifth of a catalog report's drawing was this function.

use plotters_backend::{BackendCoord, BackendStyle, DrawingBackend, DrawingErrorKind};

/// plotters' `Edge`, its position along the scanline kept.
#[derive(Clone, Copy)]
struct Edge {
    epoch: u32,
    total_epoch: u32,
    slave_begin: i32,
    slave_end: i32,
    /// [`Edge::slave_pos`] at the current epoch.
    pos: f64,
}

impl Edge {
    fn horizontal_sweep(mut from: BackendCoord, mut to: BackendCoord) -> Option<Edge> {
        if from.0 == to.0 {
            return None;
        }
        if from.0 > to.0 {
            std::mem::swap(&mut from, &mut to);
        }
        Some(Edge {
            epoch: 0,
            total_epoch: (to.0 - from.0) as u32,
            slave_begin: from.1,
            slave_end: to.1,
            pos: 0.0,
        })
    }

    fn vertical_sweep(from: BackendCoord, to: BackendCoord) -> Option<Edge> {
        Edge::horizontal_sweep((from.1, from.0), (to.1, to.0))
    }

    fn master_pos(&self) -> i32 {
        (self.total_epoch - self.epoch) as i32
    }

    /// plotters' `get_slave_pos`, the same arithmetic.
    fn slave_pos(&self) -> f64 {
        f64::from(self.slave_begin)
            + (i64::from(self.slave_end - self.slave_begin) * i64::from(self.epoch)) as f64
                / f64::from(self.total_epoch)
    }
}

/// `v.floor()` and `v.ceil()` as integers, without libm's calls (a fifth
/// of this function's instructions at `reports`' opt-level). Exact for a
/// position of an edge: [`Edge::slave_pos`] adds to one i32 end a
/// correctly rounded quotient no larger in magnitude than the distance to
/// the other end, so it lies between the two ends, within i32; there the
/// truncation `v as i32` is exact, and one step down (v negative) or up
/// (v positive) from it is the floor or the ceiling of a non-integer v,
/// and each, an integer of i32, converts back to the same f64.
fn floor_ceil(v: f64) -> (i32, i32) {
    let t = v as i32;
    let back = f64::from(t);
    if back == v {
        (t, t)
    } else if back > v {
        (t - 1, t)
    } else {
        (t, t + 1)
    }
}

/// `plotters_backend::rasterizer::fill_polygon` on `back`.
pub(super) fn fill_polygon<DB: DrawingBackend, S: BackendStyle>(
    back: &mut DB,
    vertices: &[BackendCoord],
    style: &S,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    let Some(&(x0, y0)) = vertices.first() else {
        return Ok(());
    };
    let (mut x_span, mut y_span) = ((x0, x0), (y0, y0));
    for &(x, y) in vertices {
        x_span = (x_span.0.min(x), x_span.1.max(x));
        y_span = (y_span.0.min(y), y_span.1.max(y));
    }
    // every point on one vertical or horizontal line
    if x_span.0 == x_span.1 || y_span.0 == y_span.1 {
        return back.draw_line((x_span.0, y_span.0), (x_span.1, y_span.1), style);
    }
    let horizontal_sweep = x_span.1 - x_span.0 > y_span.1 - y_span.0;

    let mut edges: Vec<(BackendCoord, BackendCoord)> =
        vertices.windows(2).map(|w| (w[0], w[1])).collect();
    edges.push((vertices[vertices.len() - 1], vertices[0]));
    // stable, as plotters' sort_by_key
    edges.sort_by_key(|((x1, y1), (x2, y2))| {
        if horizontal_sweep {
            *x1.min(x2)
        } else {
            *y1.min(y2)
        }
    });
    for edge in edges.iter_mut() {
        if horizontal_sweep {
            if (edge.0).0 > (edge.1).0 {
                std::mem::swap(&mut edge.0, &mut edge.1);
            }
        } else if (edge.0).1 > (edge.1).1 {
            std::mem::swap(&mut edge.0, &mut edge.1);
        }
    }

    let (low, high) = if horizontal_sweep { x_span } else { y_span };
    let color = style.color();
    let mut idx = 0;
    let mut active: Vec<Edge> = Vec::new();
    for sweep_line in low..=high {
        // the edges still under way, one step on, in their order
        active.retain_mut(|e| {
            if e.master_pos() > 0 {
                e.epoch += 1;
                true
            } else {
                false
            }
        });
        while idx < edges.len() {
            let line = if horizontal_sweep {
                (edges[idx].0).0
            } else {
                (edges[idx].0).1
            };
            if line > sweep_line {
                break;
            }
            let edge = if horizontal_sweep {
                Edge::horizontal_sweep(edges[idx].0, edges[idx].1)
            } else {
                Edge::vertical_sweep(edges[idx].0, edges[idx].1)
            };
            active.extend(edge);
            idx += 1;
        }
        for e in active.iter_mut() {
            e.pos = e.slave_pos();
        }
        // plotters sorts (stably) by the same positions, `partial_cmp`
        // unwrapped: none is NaN (total_epoch > 0). A wide line's outline
        // mostly has two edges under way, mostly in order, and a stable
        // sort leaves those as they are.
        let in_order = active.len() == 2 && active[0].pos <= active[1].pos;
        if !in_order {
            active.sort_by(|a, b| {
                a.pos
                    .partial_cmp(&b.pos)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        let mut first: Option<Edge> = None;
        let mut second: Option<Edge> = None;
        for &edge in active.iter() {
            if first.is_none() {
                first = Some(edge);
            } else if second.is_none() {
                second = Some(edge);
            }
            let (Some(a), Some(b)) = (first, second) else {
                continue;
            };
            if a.master_pos() == 0 && b.master_pos() != 0 {
                first = Some(b);
                second = None;
                continue;
            }
            if a.master_pos() != 0 && b.master_pos() == 0 {
                first = Some(a);
                second = None;
                continue;
            }
            let from = a.pos;
            let to = b.pos;
            if a.master_pos() == 0 && b.master_pos() == 0 && to - from > 1.0 {
                first = None;
                second = None;
                continue;
            }
            let (from_floor, from_ceil) = floor_ceil(from);
            let (to_floor, to_ceil) = floor_ceil(to);
            if horizontal_sweep {
                back.draw_line((sweep_line, from_ceil), (sweep_line, to_floor), &color)?;
                back.draw_pixel(
                    (sweep_line, from_floor),
                    color.mix(f64::from(from_ceil) - from),
                )?;
                back.draw_pixel((sweep_line, to_ceil), color.mix(to - f64::from(to_floor)))?;
            } else {
                back.draw_line((from_ceil, sweep_line), (to_floor, sweep_line), &color)?;
                back.draw_pixel(
                    (from_floor, sweep_line),
                    color.mix(f64::from(from_ceil) - from),
                )?;
                back.draw_pixel((to_ceil, sweep_line), color.mix(f64::from(to_floor) - to))?;
            }
            first = None;
            second = None;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use plotters::prelude::*;
    use plotters_backend::{BackendColor, DrawingBackend};

    /// [`super::floor_ceil`] against `f64::floor` and `f64::ceil` on
    /// integers, halves and the ulps around each, across i32.
    #[test]
    fn floor_ceil_is_libms() {
        let mut values = vec![0.0, -0.0, 0.5, -0.5, f64::from(i32::MAX) - 0.5];
        for k in (-20..=20).chain([-70_000, 65_535, 1 << 30, -(1 << 30), i32::MAX, i32::MIN + 1]) {
            for v in [f64::from(k), f64::from(k) + 0.5, f64::from(k) - 0.25] {
                values.extend([v, v.next_up(), v.next_down()]);
            }
        }
        for v in values
            .into_iter()
            .filter(|v| v.floor() >= f64::from(i32::MIN) && v.ceil() <= f64::from(i32::MAX))
        {
            assert_eq!(
                super::floor_ceil(v),
                (v.floor() as i32, v.ceil() as i32),
                "{v}"
            );
        }
    }

    /// Random wide paths (and polygons) drawn by plotters' rasterizer and
    /// by [`super::fill_polygon`]: the same pixels.
    #[test]
    fn same_pixels_as_plotters() {
        let (w, h) = (120u32, 90u32);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: i32| -> i32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as i32
        };
        for case in 0..2_000 {
            let points = 1 + next(12) as usize;
            let path: Vec<(i32, i32)> = (0..points)
                .map(|_| (next(w as i32 + 20) - 10, next(h as i32 + 20) - 10))
                .collect();
            let width = 1 + next(4) as u32;
            let color = BackendColor {
                alpha: [1.0, 0.6][next(2) as usize],
                rgb: (next(256) as u8, next(256) as u8, next(256) as u8),
            };
            let mut want = vec![255u8; (w * h * 3) as usize];
            let mut got = want.clone();
            {
                let mut b = BitMapBackend::with_buffer(&mut want, (w, h));
                let v = plotters_backend::rasterizer::polygonize(&path, width);
                plotters_backend::rasterizer::fill_polygon(&mut b, &v, &color).unwrap();
                plotters_backend::rasterizer::fill_polygon(&mut b, &path, &color).unwrap();
                b.present().unwrap();
            }
            {
                let mut b = BitMapBackend::with_buffer(&mut got, (w, h));
                let v = plotters_backend::rasterizer::polygonize(&path, width);
                super::fill_polygon(&mut b, &v, &color).unwrap();
                super::fill_polygon(&mut b, &path, &color).unwrap();
                b.present().unwrap();
            }
            assert!(want == got, "case {case}: {path:?} width {width}");
        }
    }
}
