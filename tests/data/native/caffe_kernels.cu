// Stands in for the CUDA half of libcaffe: a kernel compiled by nvcc into the library's
// .nv_fatbin section, for the architectures the build names (-gencode).
#include <cuda_runtime_api.h>

__global__ void scale(float *x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= a;
}

extern "C" int caffe_like_scale(float *x, int n) {
  scale<<<(n + 255) / 256, 256>>>(x, 2.0f, n);
  return static_cast<int>(cudaGetLastError());
}
