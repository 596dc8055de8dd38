/* A cuDNN library exporting what its release's cudnn.h declares. */
#include "cudnn.h"

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

#if CUDNN_MAJOR < 8
int cudnnGetConvolutionForwardAlgorithm(void *handle, int preference, int *algo) {
  (void)handle;
  *algo = preference;
  return 0;
}
#else
int cudnnGetConvolutionForwardAlgorithm_v7(void *handle, int requested, int *returned, int *algo) {
  (void)handle;
  *returned = requested > 0;
  *algo = 0;
  return 0;
}
#endif
