fn er_asin(v: f32) -> f32 {
  let a = abs(v);
  if (a > 1.0) { return er_f32_bits(0x7fc00000u); }
  var x = a;
  var z = a * a;
  if (a > 0.5) { z = 0.5 * (1.0 - a); x = sqrt(z); }
  var r = ((((4.2163199048e-2 * z + 2.4181311049e-2) * z + 4.5470025998e-2) * z + 7.4953002686e-2) * z + 1.6666752422e-1) * z * x + x;
  if (a > 0.5) { r = 1.5707963267948966 - (r + r); }
  return select(r, -r, v < 0.0);
}
fn er_acos(x: f32) -> f32 {
  if (x < -0.5) { return 3.141592653589793 - 2.0 * er_asin(sqrt(0.5 * (1.0 + x))); }
  if (x > 0.5) { return 2.0 * er_asin(sqrt(0.5 * (1.0 - x))); }
  return 1.5707963267948966 - er_asin(x);
}
