/* cudnn.h as cuDNN 8 ships it: the version moved out, the v7 algorithm query is gone. */
#ifndef CUDNN_H_
#define CUDNN_H_

#include <stddef.h>
#include "cudnn_version.h"

size_t cudnnGetVersion(void);
int cudnnGetConvolutionForwardAlgorithm_v7(void *handle, int requested, int *returned, int *algo);

#endif
