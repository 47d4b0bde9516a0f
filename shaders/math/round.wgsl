fn er_round(x: f32) -> f32 {
  // round half to even, as ONNX Round
  return round(x);
}
