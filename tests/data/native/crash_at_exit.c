/* A Python extension module that imports cleanly and segfaults when the process exits,
   as the conflicting OpenCV contrib libraries of the field log did. MODULE names it. */
#include <Python.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

static volatile int *nowhere;

__attribute__((destructor)) static void at_exit(void) { *nowhere = 1; }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, STR(MODULE), NULL, -1, NULL};

PyMODINIT_FUNC CAT(PyInit_, MODULE)(void) { return PyModule_Create(&module); }
