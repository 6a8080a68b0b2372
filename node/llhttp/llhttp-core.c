/* Builds llhttp's llhttp.c from the directory configure found (--with-llhttp).
 *
 * In strict mode: without it llhttp takes any byte after the CR that ends a
 * chunk size, and any two bytes for the CRLF after chunk data, which a
 * server behind us may read differently (a smuggling vector). Only this
 * file reads the switch; it is set here rather than in the build flags so
 * that a build directory made before it was set recompiles llhttp too. */
#define LLHTTP_STRICT_MODE 1
#include <llhttp.c>
