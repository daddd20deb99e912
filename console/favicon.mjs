// The console's icon, drawn here and written as favicon.ico by build.mjs (no binary in
// the repository, nothing fetched): a dark rounded square, a blue ring (the operations
// centre watching) and a red dot (an alert), anti-aliased, as PNGs of 16 and 32 pixels
// inside one ICO file (PNG-in-ICO, read by every current browser).
import { deflateSync } from "node:zlib";

const BG = [0x17, 0x21, 0x2c], RING = [0x7d, 0xb4, 0xff], DOT = [0xff, 0x5c, 0x6c];

/** Colour and coverage of the point (x, y) of the unit square [0, 1]². */
function shade(x, y) {
  const r = 0.2;  // corner radius of the square
  const cx = Math.min(Math.max(x, r), 1 - r), cy = Math.min(Math.max(y, r), 1 - r);
  if (Math.hypot(x - cx, y - cy) > r) return null;  // outside the rounded square
  const d = Math.hypot(x - 0.5, y - 0.5);
  if (d < 0.14) return DOT;
  if (d > 0.26 && d < 0.38) return RING;
  return BG;
}

function pixels(size) {
  const n = 4;  // 4×4 samples a pixel
  const out = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const acc = [0, 0, 0]; let hits = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const c = shade((px + (sx + 0.5) / n) / size, (py + (sy + 0.5) / n) / size);
          if (c) { hits++; for (let i = 0; i < 3; i++) acc[i] += c[i]; }
        }
      }
      const o = (py * size + px) * 4;
      if (hits) for (let i = 0; i < 3; i++) out[o + i] = Math.round(acc[i] / hits);
      out[o + 3] = Math.round((255 * hits) / (n * n));
    }
  }
  return out;
}

const CRC = new Int32Array(256).map((_, k) => {
  let c = k;
  for (let i = 0; i < 8; i++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

function crc32(buf) {
  let c = -1;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function png(size) {
  const rgba = pixels(size);
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; ihdr[9] = 6;  // 8 bits, RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", deflateSync(rows, { level: 9 })), chunk("IEND", Buffer.alloc(0))]);
}

/** favicon.ico: a 16- and a 32-pixel PNG. */
export function favicon(sizes = [16, 32]) {
  const images = sizes.map(png);
  const head = Buffer.alloc(6 + 16 * images.length);
  head.writeUInt16LE(0, 0); head.writeUInt16LE(1, 2); head.writeUInt16LE(images.length, 4);
  let offset = head.length;
  images.forEach((img, i) => {
    const e = 6 + 16 * i;
    head[e] = sizes[i] % 256; head[e + 1] = sizes[i] % 256;  // 0 means 256
    head.writeUInt16LE(1, e + 4); head.writeUInt16LE(32, e + 6);
    head.writeUInt32LE(img.length, e + 8); head.writeUInt32LE(offset, e + 12);
    offset += img.length;
  });
  return Buffer.concat([head, ...images]);
}
