/* Builds llhttp's http.c from the directory configure found (--with-llhttp). */
#include <http.c>
