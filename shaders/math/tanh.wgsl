fn er_tanh(x: f32) -> f32 {
  // the rational approximation onnxruntime's MLAS uses: accurate in relative terms near 0 (where
  // (e^2x - 1) / (e^2x + 1) cancels) and free of the overflow of some drivers' builtin for large |x|
  let c = clamp(x, -9.0, 9.0);
  let c2 = c * c;
  var p = c2 * -2.76076847742355e-16 + 2.00018790482477e-13;
  p = c2 * p + -8.60467152213735e-11;
  p = c2 * p + 5.12229709037114e-08;
  p = c2 * p + 1.48572235717979e-05;
  p = c2 * p + 6.37261928875436e-04;
  p = c2 * p + 4.89352455891786e-03;
  var q = c2 * 1.19825839466702e-06 + 1.18534705686654e-04;
  q = c2 * q + 2.26843463243900e-03;
  q = c2 * q + 4.89352518554385e-03;
  return c * p / q;
}
