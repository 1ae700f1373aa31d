/* A Paddle Inference C API stand-in that lacks PD_ConfigDestroy (an import cannot be resolved). */
typedef struct PD_Config { int unused; } PD_Config;
static PD_Config the_config;
PD_Config *PD_ConfigCreate(void) { return &the_config; }
