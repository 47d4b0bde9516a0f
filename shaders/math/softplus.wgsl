fn er_softplus(x: f32) -> f32 {
  // log1p(exp(x)) without losing the small exp(x) to 1 + exp(x) (Goldberg's log1p)
  if (x > 20.0) { return x; }
  let e = exp(x);
  let u = 1.0 + e;
  if (u == 1.0) { return e; }
  return log(u) * (e / (u - 1.0));
}
