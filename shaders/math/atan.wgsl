// Vulkan allows asin/acos/atan 4096 ulp (lavapipe is off by 3e-5): Cephes' single-precision versions instead
fn er_atan(v: f32) -> f32 {
  var x = abs(v);
  var y = 0.0;
  if (x > 2.414213562373095) { y = 1.5707963267948966; x = -1.0 / x; }
  else if (x > 0.4142135623730950) { y = 0.7853981633974483; x = (x - 1.0) / (x + 1.0); }
  let z = x * x;
  y = y + (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * x + x;
  return select(y, -y, v < 0.0);
}
