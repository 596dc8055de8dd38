// A Python extension module that carries a compiled caffe.proto, as _caffe.so (through
// libcaffe) and some OpenCV builds do. Loading it registers caffe.proto in protobuf's
// generated descriptor pool; MODULE names the module (caffe or cv2).
#include <Python.h>

#include "caffe.pb.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

static PyObject *shape_size(PyObject *, PyObject *args) {
  long n = 0;
  if (!PyArg_ParseTuple(args, "l", &n)) return nullptr;
  caffe::BlobShape shape;
  for (long i = 0; i < n; ++i) shape.add_dim(i + 1);
  return PyLong_FromLong(static_cast<long>(shape.ByteSizeLong()));
}

static PyMethodDef methods[] = {
    {"shape_size", shape_size, METH_VARARGS, "Serialized size of a BlobShape with n dims."},
    {nullptr, nullptr, 0, nullptr}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, STR(MODULE), nullptr, -1, methods};

PyMODINIT_FUNC CAT(PyInit_, MODULE)(void) {
  PyObject *m = PyModule_Create(&module);
  if (m) PyModule_AddStringConstant(m, "__version__", "0+caffe.proto");
  return m;
}
