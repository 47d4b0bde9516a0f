/**
 * Wall time per dispatch of one compute pipeline: `repeats` dispatches encoded into one command buffer, submitted,
 * and awaited. The kernel micro-benchmarks share it (the first call also pays the driver's JIT on lavapipe).
 */
export async function msPerDispatch(device: GPUDevice, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup,
  workgroups: readonly [number, number, number], repeats: number): Promise<number> {
  const encoder = device.createCommandEncoder();
  for (let r = 0; r < repeats; r++) {
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroups);
    pass.end();
  }
  const start = performance.now();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - start) / repeats;
}
