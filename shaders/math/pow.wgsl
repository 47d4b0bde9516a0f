fn er_pow(a: f32, b: f32) -> f32 {
  // ONNX Pow follows C pow(): negative bases with integral exponents are defined
  if (b == 0.0) { return 1.0; }
  if (b == 2.0) { return a * a; }
  if (b == 1.0) { return a; }
  if (b == 0.5) { return sqrt(a); }
  if (a >= 0.0) { return pow(a, b); }
  if (floor(b) != b) { return er_f32_bits(0x7fc00000u); }
  let m = pow(-a, b);
  if (fract(b * 0.5) != 0.0) { return -m; }
  return m;
}
