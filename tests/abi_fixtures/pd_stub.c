/* A tiny stand-in for the Paddle Inference C API (soname libpaddle_inference_c.so). */
typedef struct PD_Config { int unused; } PD_Config;
static PD_Config the_config;
PD_Config *PD_ConfigCreate(void) { return &the_config; }
void PD_ConfigDestroy(PD_Config *config) { (void)config; }
int PD_GetVersionStub(void) { return 1; }
