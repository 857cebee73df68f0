/* Bench `relay_signed`: see relay.h. The node's code exactly as shipped (libtimenet.a). */
#include "relay.h"
