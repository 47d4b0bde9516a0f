fn er_imod(a: i32, b: i32) -> i32 {
  // ONNX Mod with fmod=0: the result takes the divisor's sign
  let r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) { return r + b; }
  return r;
}
