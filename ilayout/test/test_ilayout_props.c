#include "ilayout.h"
int main(void){return 0;}
