//! A fixed-size bit set (frame bitmaps, fixmap slots).

/// `32 * W` bits, all clear at first.
#[derive(Clone, Debug)]
pub(crate) struct Bits<const W: usize>([u32; W]);

impl<const W: usize> Bits<W> {
    pub(crate) const fn new() -> Self {
        Bits([0; W])
    }
    pub(crate) fn get(&self, i: u32) -> bool {
        self.0[(i / 32) as usize] & (1 << (i % 32)) != 0
    }
    pub(crate) fn set(&mut self, i: u32, on: bool) {
        let w = &mut self.0[(i / 32) as usize];
        if on {
            *w |= 1 << (i % 32);
        } else {
            *w &= !(1 << (i % 32));
        }
    }
    /// Whether the 32-bit word holding bit `i` is all ones.
    pub(crate) fn word_full(&self, i: u32) -> bool {
        self.0[(i / 32) as usize] == u32::MAX
    }
}
