/* Stands in for a CUDA build of libcaffe: it calls the CUDA runtime and, like upstream
   Caffe's cudnn_conv_layer.cpp, cuDNN's v7 algorithm query. */
#include "cuda_runtime_api.h"
#include "cudnn.h"

int caffe_like_setup(void) {
  int runtime = 0, algo = -1;
  cudaRuntimeGetVersion(&runtime);
  cudnnGetConvolutionForwardAlgorithm((void *)0, 1, &algo);
  return runtime + algo + (int)cudnnGetVersion();
}
