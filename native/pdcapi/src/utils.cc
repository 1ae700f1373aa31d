/* Destroy functions for arrays handed to the caller (all malloc-based; no Paddle). */
#include <cstdlib>

#include "internal.h"

void PD_OneDimArrayInt32Destroy(PD_OneDimArrayInt32 *a) {
  if (!a) return;
  free(a->data);
  free(a);
}

void PD_OneDimArrayCstrDestroy(PD_OneDimArrayCstr *a) {
  if (!a) return;
  for (size_t i = 0; a->data && i < a->size; i++) free(a->data[i]);
  free(a->data);
  free(a);
}

void PD_OneDimArraySizeDestroy(PD_OneDimArraySize *a) {
  if (!a) return;
  free(a->data);
  free(a);
}

void PD_TwoDimArraySizeDestroy(PD_TwoDimArraySize *a) {
  if (!a) return;
  for (size_t i = 0; a->data && i < a->size; i++) PD_OneDimArraySizeDestroy(a->data[i]);
  free(a->data);
  free(a);
}

void PD_CstrDestroy(PD_Cstr *c) {
  if (!c) return;
  free(c->data);
  free(c);
}
