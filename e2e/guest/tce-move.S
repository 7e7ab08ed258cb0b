/*
 * L2 "firmware" for case bench-move (-bios, -m 256M): big-endian, entered
 * at 0x100 in 64-bit real mode. Built once per window (WSHIFT):
 *   WSHIFT 0:  the default window (LIOBN 0x80000000, 1 GiB of 4 KiB pages)
 *              maps the guest's RAM, TCE i -> i * 4 KiB (65536 entries);
 *   WSHIFT n:  RTAS ibm,create-pe-dma-window of 2^n bytes of 64 KiB pages on
 *              the default PHB (at 2^59), then ibm,remove-pe-dma-window of
 *              the default window, so the DDW is the PHB's only window and a
 *              move is its alone (a pSeries L1 cannot make a 64 KiB-page
 *              window at bus address 0 for VFIO: EINVAL); the DDW maps the
 *              guest's RAM, TCE i -> i * 64 KiB (4096 entries).
 * As Linux maps RAM into a DDW (direct mapping), with H_PUT_TCE_INDIRECT
 * lists of 512 entries at 0x20000; then it counts in a loop, running in
 * KVM without a hypercall. RAM layout:
 *   0x9000 entries put   0x9008 failed calls   0x9010 RTAS status (create)
 *   0x9018 0xd0e when done   0x9020 the window's LIOBN   0x9028 its bus address
 *   0x9030 the loop's count   0x9038 RTAS status (remove)
 *   0x9100 the RTAS argument buffer
 */
#define RAM_SIZE (256 << 20)
#define H_PUT_TCE_INDIRECT 0x13c
#define H_RTAS 0xf000
#define RTAS_IBM_CREATE_PE_DMA_WINDOW 0x2027
#define RTAS_IBM_REMOVE_PE_DMA_WINDOW 0x2028
#if WSHIFT
#define PSHIFT 16
#else
#define PSHIFT 12
#endif
#define NENT (RAM_SIZE >> PSHIFT)

    .text
    .globl _start
_start:
    .org 0x100
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    li      26, 0                   /* r26 = failed calls */
    li      25, 0                   /* r25 = first entry of the list */
    std     25, 0(22)
    std     26, 8(22)
    std     26, 16(22)
    std     26, 24(22)
    std     26, 56(22)
    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    li      24, 0                   /* r24 = bus address of the window */
#if WSHIFT
    addi    23, 22, 0x100           /* r23 = 0x9100: RTAS arguments */
    /* token, nargs 5, nret 4, config address 0, BUID 0x800000020000000,
       page shift, window shift; returns status, LIOBN, address hi, lo */
    li      7, RTAS_IBM_CREATE_PE_DMA_WINDOW
    stw     7, 0(23)
    li      7, 5
    stw     7, 4(23)
    li      7, 4
    stw     7, 8(23)
    li      7, 0
    stw     7, 12(23)
    lis     7, 0x0800
    stw     7, 16(23)
    lis     7, 0x2000
    stw     7, 20(23)
    li      7, PSHIFT
    stw     7, 24(23)
    li      7, WSHIFT
    stw     7, 28(23)
    li      7, -1
    stw     7, 32(23)
    li      3, 0
    ori     3, 3, H_RTAS
    mr      4, 23
    sc      1
    lwz     7, 32(23)
    extsw   7, 7
    std     7, 16(22)
    cmpwi   7, 0
    bne     done                    /* no window: 0x9010 says why */
    lwz     20, 36(23)              /* r20 = the DDW's LIOBN */
    lwz     24, 40(23)
    sldi    24, 24, 32
    lwz     7, 44(23)
    or      24, 24, 7               /* r24 = its bus address */
    /* token, nargs 1, nret 1, the default window's LIOBN */
    li      7, RTAS_IBM_REMOVE_PE_DMA_WINDOW
    stw     7, 0(23)
    li      7, 1
    stw     7, 4(23)
    stw     7, 8(23)
    li      19, 0
    oris    19, 19, 0x8000          /* LIOBN 0x80000000 */
    stw     19, 12(23)
    li      7, -1
    stw     7, 16(23)
    li      3, 0
    ori     3, 3, H_RTAS
    mr      4, 23
    sc      1
    lwz     7, 16(23)
    extsw   7, 7
    std     7, 56(22)
    cmpwi   7, 0
    bne     done                    /* 0x9038 says why */
#endif
    std     20, 32(22)
    std     24, 40(22)
    lis     21, 2                   /* r21 = 0x20000: the TCE list */
list:
    li      27, 0                   /* r27 = index in the list */
fill:
    add     5, 25, 27
    sldi    5, 5, PSHIFT            /* TCE i -> i * page size */
    ori     5, 5, 3                 /* read | write */
    sldi    7, 27, 3
    stdx    5, 21, 7
    addi    27, 27, 1
    cmpdi   27, 512
    blt     fill
    li      3, H_PUT_TCE_INDIRECT
    mr      4, 20
    sldi    5, 25, PSHIFT
    add     5, 5, 24                /* ioba */
    mr      6, 21
    li      7, 512
    sc      1
    cmpdi   3, 0
    beq     1f
    addi    26, 26, 1
1:  addi    25, 25, 512
    std     25, 0(22)
    std     26, 8(22)
    lis     7, NENT@h
    ori     7, 7, NENT@l
    cmpd    25, 7
    blt     list
done:
    li      7, 0xd0e
    std     7, 24(22)
    li      8, 0
2:  addi    8, 8, 1
    std     8, 48(22)
    b       2b
