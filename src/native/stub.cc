// Non-Linux builds: an addon with no functions, so the loader reports "unsupported platform"
// and kiln uses its fallbacks (streams, one worker).
#include <napi.h>

Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(kiln_native, Init)
