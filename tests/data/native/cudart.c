/* A CUDA runtime library with the version and soname of a real one. */
#include "cuda_runtime_api.h"

int cudaRuntimeGetVersion(int *runtimeVersion) {
  *runtimeVersion = CUDART_VERSION;
  return 0;
}
