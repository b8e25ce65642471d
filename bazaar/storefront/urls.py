from django.urls import URLPattern, path

from bazaar.storefront.views import public, vendor

app_name = "storefront"

urlpatterns: list[URLPattern] = [
    path("storefront/", vendor.dashboard, name="dashboard"),
    path("storefront/signup/", vendor.signup, name="signup"),
    path("storefront/shop/", vendor.shop_settings, name="shop"),
    path("storefront/chart.svg", vendor.chart_svg, name="chart"),
    path("storefront/products/", vendor.product_list, name="products"),
    path("storefront/products/new/", vendor.product_new, name="product_new"),
    path("storefront/products/<int:pk>/edit/", vendor.product_edit, name="product_edit"),
    path("storefront/products/<int:pk>/toggle/", vendor.product_toggle, name="product_toggle"),
    path("storefront/products/<int:pk>/delete/", vendor.product_delete, name="product_delete"),
    path("storefront/orders/", vendor.order_list, name="orders"),
    path("storefront/orders.csv", vendor.order_export, name="orders_csv"),
    path("storefront/orders/<int:pk>/", vendor.order_detail, name="order"),
    path("storefront/orders/<int:pk>/status/", vendor.order_status, name="order_status"),
    path("storefront/orders/<int:pk>/payment/", vendor.order_payment, name="order_payment"),
    path("s/<slug:slug>/", public.store_page, name="store"),
    path("s/<slug:slug>/cart/", public.cart, name="cart"),
    path("s/<slug:slug>/order/", public.store_order, name="store_order"),
    path("s/<slug:slug>/orders/<str:number>/", public.order_confirmation, name="order_confirmation"),
]
